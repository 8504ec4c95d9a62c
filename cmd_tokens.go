package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/storage"
)

func (c *cli) tokensCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Revoke tokens in bulk",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(c.tokensRevoke())
	return cmd
}

func (c *cli) tokensRevoke() *cobra.Command {
	var client, subject string
	cmd := &cobra.Command{
		Use:   "revoke --client ID | --subject SUB",
		Short: "Revoke every access token, refresh token and pending code of one client or one subject (and end the subject's login sessions)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (client == "") == (subject == "") {
				return errors.New("give exactly one of --client ID or --subject SUB")
			}
			return c.withStore(cmd.Context(), func(_ config.File, st storage.Store) error {
				var (
					n        int64
					sessions int64
					err      error
					what     string
				)
				if client != "" {
					if _, err := st.GetClient(cmd.Context(), client); err != nil {
						return clientError(client, err)
					}
					n, err = st.RevokeClientTokens(cmd.Context(), client)
					what = "client " + client
				} else {
					// A browser still signed in would get new codes at
					// once (prompt=none): its sessions end too.
					n, sessions, err = st.RevokeSubject(cmd.Context(), subject)
					what = "subject " + subject
				}
				if err != nil {
					return err
				}
				grants := "grants"
				if n == 1 {
					grants = "grant"
				}
				fmt.Fprintf(c.stdout, "revoked %d %s of %s\n", n, grants, what)
				if subject != "" {
					fmt.Fprintf(c.stdout, "ended %s of %s\n", plural(sessions, "login session"), what)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&client, "client", "", "client_id whose tokens to revoke")
	cmd.Flags().StringVar(&subject, "subject", "", "subject (username) whose tokens to revoke")
	return cmd
}
