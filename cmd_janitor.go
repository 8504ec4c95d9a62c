package main

import (
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchauth/latch/config"
	"github.com/latchauth/latch/storage"
)

// janitorCommand runs the clean-up of expired rows once, in the same small
// batches as serve does every janitor.interval: for a cron job, or when the
// interval is 0. It prints what it deleted from each table.
func (c *cli) janitorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "janitor",
		Short: "Delete expired tokens, codes, sessions and used JWT IDs once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(cmd.Context(), func(_ config.File, st storage.Store) error {
				byTable := map[string]int64{}
				n, err := st.DeleteExpiredInBatches(cmd.Context(), time.Now(), storage.DefaultCleanupBatch,
					func(table string, n int64) { byTable[table] += n })
				tables := make([]string, 0, len(byTable))
				for table := range byTable {
					tables = append(tables, table)
				}
				sort.Strings(tables)
				for _, table := range tables {
					fmt.Fprintf(c.stdout, "%-16s %d\n", table, byTable[table])
				}
				if err != nil {
					return fmt.Errorf("after deleting %d rows: %w", n, err)
				}
				fmt.Fprintf(c.stdout, "deleted %d expired rows\n", n)
				return nil
			})
		},
	}
}
