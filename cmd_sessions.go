package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/storage"
)

func (c *cli) sessionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List and end login sessions (browsers signed in)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(c.sessionsList(), c.sessionsRevoke())
	return cmd
}

// sessionScope is --subject S or --all, exactly one.
type sessionScope struct {
	subject string
	all     bool
}

func (s *sessionScope) add(cmd *cobra.Command, verb string) {
	cmd.Flags().StringVar(&s.subject, "subject", "", "the username whose sessions to "+verb)
	cmd.Flags().BoolVar(&s.all, "all", false, verb+" the sessions of every user")
}

func (s sessionScope) check() error {
	if (s.subject == "") == !s.all {
		return errors.New("give exactly one of --subject USERNAME or --all")
	}
	return nil
}

// userExists turns an unknown --subject into an error: sessions belong to
// users, so a name without one is most likely a typo.
func (s sessionScope) userExists(cmd *cobra.Command, st storage.Store) error {
	if s.all {
		return nil
	}
	_, err := st.GetUser(cmd.Context(), s.subject)
	return userError(s.subject, err)
}

// sessionView is a login session as the CLI prints it. ID is the stored
// digest of the session ID, not a usable cookie.
type sessionView struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject"`
	AuthTime  time.Time `json:"auth_time"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (c *cli) sessionsList() *cobra.Command {
	var (
		scope sessionScope
		out   outputFlag
	)
	cmd := &cobra.Command{
		Use:   "list --subject USERNAME | --all",
		Short: "List the unexpired login sessions of one user or of everyone",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := errors.Join(scope.check(), out.check()); err != nil {
				return err
			}
			return c.withStore(cmd.Context(), func(_ config.File, st storage.Store) error {
				if err := scope.userExists(cmd, st); err != nil {
					return err
				}
				var list []storage.LoginSessionInfo
				var err error
				if scope.all {
					list, err = st.ListAllLoginSessions(cmd.Context())
				} else {
					list, err = st.ListLoginSessions(cmd.Context(), scope.subject)
				}
				if err != nil {
					return err
				}
				views := make([]sessionView, len(list))
				for i, ls := range list {
					views[i] = sessionView{ID: ls.Handle, Subject: ls.Username, AuthTime: ls.AuthTime, ExpiresAt: ls.ExpiresAt}
				}
				if out.json() {
					return writeJSON(c.stdout, views)
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "SUBJECT\tSIGNED IN\tEXPIRES\tID")
				for _, v := range views {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Subject, stamp(v.AuthTime), stamp(v.ExpiresAt), v.ID[:min(12, len(v.ID))])
				}
				return tw.Flush()
			})
		},
	}
	scope.add(cmd, "list")
	out.add(cmd)
	return cmd
}

func (c *cli) sessionsRevoke() *cobra.Command {
	var scope sessionScope
	cmd := &cobra.Command{
		Use:   "revoke --subject USERNAME | --all",
		Short: "End the login sessions of one user or of everyone: they sign in again; tokens stay (latch tokens revoke ends both)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := scope.check(); err != nil {
				return err
			}
			return c.withStore(cmd.Context(), func(_ config.File, st storage.Store) error {
				if err := scope.userExists(cmd, st); err != nil {
					return err
				}
				var n int64
				var err error
				what := "of every user"
				if scope.all {
					n, err = st.EndAllLoginSessions(cmd.Context())
				} else {
					n, err = st.EndLoginSessions(cmd.Context(), scope.subject)
					what = "of subject " + scope.subject
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "ended %s %s\n", plural(n, "login session"), what)
				return nil
			})
		},
	}
	scope.add(cmd, "end")
	return cmd
}

// plural is "1 login session" or "2 login sessions".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
