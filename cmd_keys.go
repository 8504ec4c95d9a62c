package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/keys"
	"github.com/latchauth/latch/storage"
)

// keyCacheTTL is how long a running server trusts the keys it read (the
// keys package's cache): a retired key must stay published that much longer
// than the tokens it signed, for instances that have not seen the rotation.
const keyCacheTTL = 5 * time.Second

func (c *cli) keysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List and rotate the signing keys of ID tokens and JWT access tokens",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(c.keysList(), c.keysRotate())
	return cmd
}

// keyView is a signing key as the CLI prints it: never its private part.
type keyView struct {
	KID       string     `json:"kid"`
	Algorithm string     `json:"alg"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Current   bool       `json:"current"`
}

// keyViews lists the published keys, newest first; the newest unretired one
// signs, as in the keys package.
func keyViews(list []*storage.SigningKey) []keyView {
	views := make([]keyView, len(list))
	current := false
	for i, k := range list {
		views[i] = keyView{KID: k.KID, Algorithm: k.Algorithm, CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt, ExpiresAt: k.ExpiresAt}
		if k.RetiredAt == nil && !current {
			views[i].Current, current = true, true
		}
	}
	return views
}

func (c *cli) keysList() *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the published signing keys (never their private parts)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			return c.withStore(cmd.Context(), func(_ config.File, st storage.Store) error {
				list, err := st.ListSigningKeys(cmd.Context(), time.Now())
				if err != nil {
					return err
				}
				views := keyViews(list)
				if out.json() {
					return writeJSON(c.stdout, views)
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "KID\tALGORITHM\tCREATED\tRETIRED\tEXPIRES\tCURRENT")
				for _, k := range views {
					current := "no"
					if k.Current {
						current = "yes"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.Algorithm, stamp(k.CreatedAt), stampPtr(k.RetiredAt), stampPtr(k.ExpiresAt), current)
				}
				return tw.Flush()
			})
		},
	}
	out.add(cmd)
	return cmd
}

func (c *cli) keysRotate() *cobra.Command {
	var unpublish bool
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Make a new signing key current; the old ones stay published until the tokens they signed expire",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(cmd.Context(), func(f config.File, st storage.Store) error {
				m, err := keys.NewManager(st, f.Tokens.IDTokenSigningAlg, time.Now)
				if err != nil {
					return err
				}
				publishFor := max(f.Tokens.IDTokenLifespan.Duration, f.Tokens.AccessTokenLifespan.Duration) + keyCacheTTL
				if unpublish {
					publishFor = 0
				}
				if err := m.Rotate(cmd.Context(), publishFor); err != nil {
					return err
				}
				list, err := st.ListSigningKeys(cmd.Context(), time.Now())
				if err != nil {
					return err
				}
				for _, k := range keyViews(list) {
					if k.Current {
						fmt.Fprintf(c.stdout, "new signing key %s (%s) is current; running servers sign with it within %s\n", k.KID, k.Algorithm, keyCacheTTL)
						break
					}
				}
				if unpublish {
					fmt.Fprintf(c.stdout, "the previous keys are no longer published: every token they signed fails verification within %s\n", keyCacheTTL)
				} else {
					fmt.Fprintf(c.stdout, "the previous keys stay published for %s, until the tokens they signed have expired\n", publishFor)
				}
				return nil
			})
		},
	}
	// For a key that may have leaked (a copy of a database without
	// secrets.system): its holder can sign tokens for as long as it is
	// published.
	cmd.Flags().BoolVar(&unpublish, "unpublish", false, "stop publishing the previous keys at once (they may have leaked); the tokens they signed stop verifying")
	return cmd
}

func stampPtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return stamp(*t)
}
