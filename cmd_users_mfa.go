package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/storage"
)

// usersMFA is `latch users mfa`: what an administrator does about a
// user's second factors.
func (c *cli) usersMFA() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mfa",
		Short: "Manage users' second factors",
	}
	cmd.AddCommand(c.usersMFAReset())
	return cmd
}

func (c *cli) usersMFAReset() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "reset --username NAME",
		Short: "Remove a user's second factors and recovery codes (a lost authenticator)",
		Long: "Removes the user's TOTP, recovery codes and passkeys. Their next sign-in asks for the password alone,\n" +
			"or for a new enrolment where mfa.required or the client's require_mfa asks for a second factor.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return errors.New("--username is required")
			}
			return c.withStore(cmd.Context(), func(_ config.File, st storage.Store) error {
				if _, err := st.GetUser(cmd.Context(), name); err != nil {
					return userError(name, err)
				}
				err := st.DeleteSecondFactors(cmd.Context(), name)
				if errors.Is(err, storage.ErrNotFound) {
					fmt.Fprintf(c.stdout, "user %s has no second factor\n", name)
					return nil
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "removed the second factors and recovery codes of user %s\n", name)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&name, "username", "", "the user")
	return cmd
}
