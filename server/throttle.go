package server

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/latchauth/latch/users"
)

// deviceGuessRule throttles wrong user codes on the device page, per
// address: five free, then 10 s doubling up to 2 min. A user code has
// about 34 bits and lives 10 minutes; an address gets about a dozen
// guesses in that time.
var deviceGuessRule = users.Rule{Free: 5, Base: 10 * time.Second, Max: 2 * time.Minute, Forget: 15 * time.Minute}

// setRetryAfter says in whole seconds, rounded up, when a throttled
// attempt may come again (RFC 9110 §10.2.3).
func setRetryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
}

// waitMessage tells a person throttled on the login form how long to wait.
func waitMessage(wait time.Duration) string {
	if wait < time.Minute {
		return fmt.Sprintf("Too many failed attempts. Wait %d seconds, then try again.", int(math.Ceil(wait.Seconds())))
	}
	return fmt.Sprintf("Too many failed attempts. Wait %d minutes, then try again.", int(math.Ceil(wait.Minutes())))
}
