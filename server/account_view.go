package server

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/latchauth/latch/storage"
	"github.com/latchauth/latch/templates"
)

// renderAccount shows the account page of the person signed in as ls.
func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, ls *storage.LoginSession, status int, notice, errMsg string) {
	ctx := r.Context()
	user, err := s.store.GetUser(ctx, ls.Username)
	if errors.Is(err, storage.ErrNotFound) {
		// The user was deleted while signed in: nothing to show.
		s.renderAccountLogin(w, r, http.StatusOK, "", "")
		return
	} else if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	sessions, err := s.store.ListSessionViews(ctx, ls.Username)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	grants, err := s.store.ListGrants(ctx, ls.Username)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	d := templates.AccountData{
		Page: s.page(r, ""), Username: user.Username, Name: user.Name, Notice: notice, Error: errMsg,
		Action: pathAccount, LogoutURL: pathLogout, PasskeysOn: s.webauthn != nil,
	}
	if !s.accountTOTPView(w, r, ls.Username, &d) {
		return
	}
	_, keys, err := s.passkeyUserOf(r, ls.Username)
	if err != nil {
		s.renderStorageError(w, r, err)
		return
	}
	for _, k := range keys {
		p := templates.AccountPasskey{ID: k.ID, Name: k.Name, Created: shortTime(k.CreatedAt), Synced: passkeySynced(k)}
		if k.LastUsedAt != nil {
			p.LastUsed = shortTime(*k.LastUsedAt)
		}
		d.Passkeys = append(d.Passkeys, p)
	}
	current := storage.SessionHandle(ls.ID)
	for _, v := range sessions {
		d.Sessions = append(d.Sessions, templates.AccountSession{
			Handle: v.Handle, Device: describeDevice(v.UserAgent), Address: v.Address,
			SignedIn: shortTime(v.AuthTime), LastSeen: shortTime(v.LastSeen), Current: v.Handle == current,
		})
	}
	for _, g := range grants {
		name := g.ClientID
		if c, err := s.store.GetClient(ctx, g.ClientID); err == nil {
			name = clientName(c)
		}
		d.Applications = append(d.Applications, templates.AccountApplication{
			ClientID: g.ClientID, Name: name, Scopes: scopeList(g.Scopes),
			Remembered: g.Remembered, LiveTokens: g.LiveTokens, Since: shortTime(g.Since),
		})
	}
	s.render(w, r, status, func(b *bytes.Buffer) error { return s.pages.Account(b, d) })
}

// accountTOTPView fills in the authenticator app of username; on a
// storage failure it has answered and returns false.
func (s *Server) accountTOTPView(w http.ResponseWriter, r *http.Request, username string, d *templates.AccountData) bool {
	t, err := s.store.GetTOTP(r.Context(), username)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !t.Confirmed) {
		return true
	}
	if err == nil {
		d.TOTP, d.TOTPSince = true, shortTime(t.CreatedAt)
		d.RecoveryCodesLeft, err = s.store.UnusedRecoveryCodes(r.Context(), username)
	}
	if err != nil {
		s.renderStorageError(w, r, err)
		return false
	}
	return true
}

func shortTime(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") }

// browserNames and systemNames map User-Agent tokens to words, first match
// wins: Edge and Opera also say Chrome, Chrome also says Safari, Android
// also says Linux.
var (
	browserNames = [][2]string{{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"},
		{"Chrome/", "Chrome"}, {"Chromium/", "Chromium"}, {"Safari/", "Safari"}, {"curl/", "curl"}}
	systemNames = [][2]string{{"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"CrOS", "ChromeOS"},
		{"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"Linux", "Linux"}}
)

// describeDevice names the browser and system of a User-Agent, enough for
// a person to tell their sessions apart ("Firefox on Linux"); it is a
// label, never a security decision.
func describeDevice(ua string) string {
	find := func(names [][2]string) string {
		for _, n := range names {
			if strings.Contains(ua, n[0]) {
				return n[1]
			}
		}
		return ""
	}
	browser, system := find(browserNames), find(systemNames)
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return "A browser on " + system
	}
	return "Unknown browser"
}
