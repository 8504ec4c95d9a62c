package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/storage"
)

// janitorCommand runs the clean-up of expired rows once, as serve does
// every janitor.interval: for a cron job, or when the interval is 0.
func (c *cli) janitorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "janitor",
		Short: "Delete expired tokens, codes, sessions and used JWT IDs once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(cmd.Context(), func(_ config.File, st storage.Store) error {
				n, err := st.DeleteExpired(cmd.Context(), time.Now())
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "deleted %d expired rows\n", n)
				return nil
			})
		},
	}
}
