package badger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/wardsec/ward/controller/internal/store"
)

// Keys of the inventory (store.Inventory):
//
//	tenant:<t>:device:<id>               Device (id is "mac:<mac>" or "ip:<address>")
//	tenant:<t>:scan:<collector>          ScanStatus, the collector's latest scan
//	tenant:<t>:siteconfig                SiteConfig
//	tenant:<t>:discursor:<agent>         8-byte big-endian sequence number
//	tenant:<t>:pollcursor:<agent>        8-byte big-endian sequence number
func deviceKey(tenant, id string) []byte { return []byte("tenant:" + tenant + ":device:" + id) }
func devicesPrefix(tenant string) []byte { return []byte("tenant:" + tenant + ":device:") }
func scanKey(tenant, collector string) []byte {
	return []byte("tenant:" + tenant + ":scan:" + collector)
}
func scansPrefix(tenant string) []byte   { return []byte("tenant:" + tenant + ":scan:") }
func siteConfigKey(tenant string) []byte { return []byte("tenant:" + tenant + ":siteconfig") }
func cursorKey(tenant, agent string) []byte {
	return []byte("tenant:" + tenant + ":discursor:" + agent)
}

func pollCursorKey(tenant, agent string) []byte {
	return []byte("tenant:" + tenant + ":pollcursor:" + agent)
}

var _ store.Inventory = (*Store)(nil)

// UpdateDevice reads, changes and stores one device, absorbing older records of it.
func (s *Store) UpdateDevice(ctx context.Context, tenant, id string, absorb []string,
	fn func(d *store.Device, found bool, absorbed []store.Device) error) (store.Device, error) {
	var out store.Device
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		if err := tenantExists(txn, tenant); err != nil {
			return err
		}
		d := store.Device{ID: id, Tenant: tenant}
		err := get(txn, deviceKey(tenant, id), &d)
		found := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}

		var absorbed []store.Device
		for _, old := range absorb {
			if old == id {
				continue
			}
			var o store.Device
			err := get(txn, deviceKey(tenant, old), &o)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			absorbed = append(absorbed, o)
			if err := txn.Delete(deviceKey(tenant, old)); err != nil {
				return err
			}
		}

		if err := fn(&d, found, absorbed); err != nil {
			return err
		}
		d.ID, d.Tenant = id, tenant
		out = d
		return put(txn, deviceKey(tenant, id), d)
	})
	if err != nil {
		return store.Device{}, fmt.Errorf("update device %s: %w", id, err)
	}
	return out, nil
}

// GetDevice returns one device.
func (s *Store) GetDevice(ctx context.Context, tenant, id string) (store.Device, error) {
	var d store.Device
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		return get(txn, deviceKey(tenant, id), &d)
	})
	if err != nil {
		return store.Device{}, fmt.Errorf("get device %s: %w", id, err)
	}
	return d, nil
}

// ListDevices returns the tenant's devices matching f, by id.
func (s *Store) ListDevices(ctx context.Context, tenant string, f store.DeviceFilter) (
	[]store.Device, error) {
	var out []store.Device
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		return each(txn, devicesPrefix(tenant), func(d store.Device) error {
			if f.Match(d) {
				out = append(out, d)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list devices of %s: %w", tenant, err)
	}
	return out, nil
}

// CountDevices counts the tenant's devices without decoding them.
func (s *Store) CountDevices(ctx context.Context, tenant string) (int, error) {
	n := 0
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		opts := badgerdb.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = devicesPrefix(tenant)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count devices of %s: %w", tenant, err)
	}
	return n, nil
}

// PutScan stores a collector's latest scan status.
func (s *Store) PutScan(ctx context.Context, sc store.ScanStatus) error {
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		if err := tenantExists(txn, sc.Tenant); err != nil {
			return err
		}
		return put(txn, scanKey(sc.Tenant, sc.Collector), sc)
	})
	if err != nil {
		return fmt.Errorf("put scan %s: %w", sc.ScanID, err)
	}
	return nil
}

// ListScans returns the latest scan of each collector of the tenant.
func (s *Store) ListScans(ctx context.Context, tenant string) ([]store.ScanStatus, error) {
	var out []store.ScanStatus
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		return each(txn, scansPrefix(tenant), func(sc store.ScanStatus) error {
			out = append(out, sc)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list scans of %s: %w", tenant, err)
	}
	return out, nil
}

// GetSiteConfig returns the tenant's site configuration.
func (s *Store) GetSiteConfig(ctx context.Context, tenant string) (store.SiteConfig, error) {
	var c store.SiteConfig
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		return get(txn, siteConfigKey(tenant), &c)
	})
	if err != nil {
		return store.SiteConfig{}, fmt.Errorf("get site config of %s: %w", tenant, err)
	}
	return c, nil
}

// PutSiteConfig replaces the tenant's site configuration.
func (s *Store) PutSiteConfig(ctx context.Context, tenant string, c store.SiteConfig) error {
	err := s.update(ctx, func(txn *badgerdb.Txn) error {
		if err := tenantExists(txn, tenant); err != nil {
			return err
		}
		return put(txn, siteConfigKey(tenant), c)
	})
	if err != nil {
		return fmt.Errorf("put site config of %s: %w", tenant, err)
	}
	return nil
}

// DiscoveryCursor returns the last message of the agent read into the inventory.
func (s *Store) DiscoveryCursor(ctx context.Context, tenant, agent string) (uint64, error) {
	var seq uint64
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		var err error
		seq, err = readCursor(txn, cursorKey(tenant, agent))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("discovery cursor of %s: %w", agent, err)
	}
	return seq, nil
}

// SetDiscoveryCursor raises the agent's cursor to seq.
func (s *Store) SetDiscoveryCursor(ctx context.Context, tenant, agent string, seq uint64) error {
	if err := s.raiseCursor(ctx, cursorKey(tenant, agent), seq); err != nil {
		return fmt.Errorf("set discovery cursor of %s: %w", agent, err)
	}
	return nil
}

// PollCursor returns the last device poll report of the agent applied to the inventory.
func (s *Store) PollCursor(ctx context.Context, tenant, agent string) (uint64, error) {
	var seq uint64
	err := s.view(ctx, func(txn *badgerdb.Txn) error {
		var err error
		seq, err = readCursor(txn, pollCursorKey(tenant, agent))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("poll cursor of %s: %w", agent, err)
	}
	return seq, nil
}

// SetPollCursor raises the agent's poll cursor to seq.
func (s *Store) SetPollCursor(ctx context.Context, tenant, agent string, seq uint64) error {
	if err := s.raiseCursor(ctx, pollCursorKey(tenant, agent), seq); err != nil {
		return fmt.Errorf("set poll cursor of %s: %w", agent, err)
	}
	return nil
}

// raiseCursor sets the cursor at key to seq unless it is at seq or above already.
func (s *Store) raiseCursor(ctx context.Context, key []byte, seq uint64) error {
	return s.update(ctx, func(txn *badgerdb.Txn) error {
		cur, err := readCursor(txn, key)
		if err != nil || seq <= cur {
			return err
		}
		return txn.Set(key, binary.BigEndian.AppendUint64(nil, seq))
	})
}

func readCursor(txn *badgerdb.Txn, key []byte) (uint64, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badgerdb.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	val, err := item.ValueCopy(nil)
	if err != nil {
		return 0, err
	}
	if len(val) != 8 {
		return 0, fmt.Errorf("cursor %s: %d bytes, want 8", key, len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}
