package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/storage"
)

// backupCommand copies the SQLite database to a new file while serve keeps
// running: a consistent snapshot, safe to take from cron.
func (c *cli) backupCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Copy the SQLite database to FILE, consistently, while serve runs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(cmd.Context(), func(_ config.File, st storage.Store) error {
				b, ok := st.(storage.Backuper)
				if !ok {
					return errors.New("this store cannot back itself up")
				}
				if err := b.Backup(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "backed up to %s\n", args[0])
				return nil
			})
		},
	}
}
