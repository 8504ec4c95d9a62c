package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

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
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 || args[0] == "" {
				return errors.New("give the file to write: latch backup FILE, e.g. latch backup /backups/latch-$(date +%F).db")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkBackupTarget(args[0]); err != nil {
				return err
			}
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

// checkBackupTarget says in one line what is wrong with FILE before the
// database is opened: SQLite would only say "unable to open database file".
func checkBackupTarget(path string) error {
	dir := filepath.Dir(path)
	switch info, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no such folder %s: create it first, backup writes FILE into an existing folder", dir)
	case err != nil:
		return fmt.Errorf("cannot use folder %s: %v", dir, errors.Unwrap(err))
	case !info.IsDir():
		return fmt.Errorf("%s is not a folder", dir)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s already exists; backup never overwrites a file", path)
	}
	return nil
}
