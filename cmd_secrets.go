package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch/secrets"
	"github.com/latchauth/latch/server"
)

func (c *cli) secretsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Manage the system secret that encrypts signing keys at rest",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(c.secretsRotate())
	return cmd
}

// secretsRotate re-encrypts everything encrypted at rest from the old
// system secret to the one configured now, in one transaction: it either
// all moves to the new secret or nothing changes.
func (c *cli) secretsRotate() *cobra.Command {
	var old string
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Re-encrypt what is encrypted at rest under the configured secrets.system; the previous secret from --old or standard input",
		Long: `Re-encrypt the signing keys and every other value encrypted at rest,
from the previous system secret to the one configured now (secrets.system in
config.yaml or LATCH_SECRETS_SYSTEM), in one transaction.

The previous secret is read from the first line of standard input (without
echo on a terminal) unless --old gives it; a flag leaves it in the shell
history and the process list.

Stop every server first and start them again with the new secret: a server
still configured with the old one can no longer read the signing keys. The
system secret also keys opaque access and refresh tokens and the login
cookies, so those end with the rotation; ID tokens and JWT access tokens
stay valid, since the signing keys do not change.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := c.loadConfig()
			if err != nil {
				return err
			}
			if err := validate(f); err != nil {
				return err
			}
			if f.Secrets.System == "" {
				return errors.New("secrets.system is not set: configure the new secret (config.yaml or LATCH_SECRETS_SYSTEM), then rotate from the old one")
			}
			if !cmd.Flags().Changed("old") {
				if old, err = c.readSecret("Old system secret", false); err != nil {
					return err
				}
			}
			if old == f.Secrets.System {
				return errors.New("the old secret is the configured one: set the new secret in secrets.system or LATCH_SECRETS_SYSTEM first")
			}
			from, err := secrets.NewCipher([]byte(old))
			if err != nil {
				return fmt.Errorf("--old: %w", err)
			}
			to, err := secrets.NewCipher([]byte(f.Secrets.System))
			if err != nil {
				return fmt.Errorf("secrets.system: %w", err)
			}
			n, err := server.RotateSecret(cmd.Context(), f, newLogger(f, c.stderr), from)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "re-encrypted %d values: everything encrypted at rest is now under the secret with key id %s (the old one had %s)\n", n, to.KeyID(), from.KeyID())
			fmt.Fprintln(c.stdout, "start every server with the new secret; opaque tokens and login sessions of the old secret have ended")
			return nil
		},
	}
	cmd.Flags().StringVar(&old, "old", "", "the previous system secret (default: read from standard input)")
	return cmd
}
