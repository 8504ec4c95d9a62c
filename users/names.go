package users

import (
	"context"
	"errors"
	"fmt"

	"github.com/ory/fosite"

	"github.com/latchauth/latch/storage"
)

// ErrNameIsClient refuses a username that is a client id. A
// client_credentials token's subject is its client id (as in Hydra and
// Keycloak), so a user of the same name would share that subject at every
// resource server that reads sub. Userinfo tells the two apart on its own
// (it answers only for tokens of a user's sign-in); resource servers
// cannot, so the names are kept apart where users are made.
var ErrNameIsClient = errors.New("the username is the id of a client; a username may not be a client id")

// ClientGetter is the one store method CheckNotClientID needs.
type ClientGetter interface {
	GetClient(ctx context.Context, id string) (fosite.Client, error)
}

// CheckNotClientID returns ErrNameIsClient (wrapped, naming the user) when
// username is the id of a stored client, and a storage failure as is.
func CheckNotClientID(ctx context.Context, st ClientGetter, username string) error {
	_, err := st.GetClient(ctx, username)
	switch {
	case err == nil:
		return fmt.Errorf("user %q: %w", username, ErrNameIsClient)
	case errors.Is(err, storage.ErrNotFound):
		return nil
	default:
		return err
	}
}
