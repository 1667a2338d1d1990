package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// CheckBoltFile checks any bbolt file (the state file, raft's log.db) without
// writing to it: that it is not shorter than its meta pages say, and that every
// key and value of every bucket can be read with keys in order. Damage is
// reported as ErrCorrupt; it never panics or faults the process.
func CheckBoltFile(path string) error { return checkBoltFile(path, time.Second) }

func checkBoltFile(path string, lockTimeout time.Duration) (err error) {
	if err := checkFileSize(path); err != nil {
		return accessError(path, err)
	}
	if err := checkPages(path); err != nil {
		return accessError(path, err)
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, v)
		}
	}()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return fmt.Errorf("%s is locked by another process: %w", path, err)
		}
		if err := accessError(path, err); errors.Is(err, ErrNoAccess) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer db.Close()
	return db.View(walkAll)
}

// precheckFile runs CheckBoltFile on an existing, non-empty file; a missing or
// empty file is new.
func precheckFile(path string, lockTimeout time.Duration) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || err == nil && fi.Size() == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	return checkBoltFile(path, lockTimeout)
}

// checkPages reads the bbolt file at path as bytes, never through a memory map,
// and checks what bbolt itself walks when it opens a file written without a
// free list (it rebuilds the list by walking every page, and a page a flipped
// byte damaged can fault or panic the process there): a valid meta page, every
// page reachable from the root inside the file, of a branch or leaf type, named
// by its own id and reached once, elements inside their page, and keys in order
// within each page and within the bounds its parent gives. Layout: bbolt v1
// (format version 2), little-endian, as checkFileSize.
func checkPages(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	c := &pageChecker{f: f, size: fi.Size(), seen: map[uint64]bool{}}
	root, err := c.meta()
	if err != nil {
		return err
	}
	return c.tree(root, nil, nil, 0)
}

type pageChecker struct {
	f         *os.File
	size      int64
	pageSize  int64
	highWater uint64
	seen      map[uint64]bool
}

const (
	bboltMagic          = 0xED0CDAED
	bboltVersion        = 2
	bboltPageHeader     = 16
	bboltElement        = 16
	bboltBranch         = 0x01
	bboltLeaf           = 0x02
	bboltBucketLeafFlag = 0x01
	bboltNoFreelist     = ^uint64(0)
	bboltMaxDepth       = 64
)

// meta picks the meta page bbolt would (the valid one with the higher txid) and
// returns the root bucket's page id.
func (c *pageChecker) meta() (uint64, error) {
	var hdr [80]byte
	if _, err := c.f.ReadAt(hdr[:], 0); err != nil {
		return 0, fmt.Errorf("%w: %d-byte file has no meta page", ErrCorrupt, c.size)
	}
	c.pageSize = int64(binary.LittleEndian.Uint32(hdr[24:]))
	if binary.LittleEndian.Uint32(hdr[16:]) != bboltMagic || c.pageSize < 512 || c.pageSize > 1<<20 {
		// Without the first meta page the page size is unknown (this node
		// makes 16 KB pages, older files have 4 KB): refused, as
		// checkFileSize refuses it before the walk.
		return 0, fmt.Errorf("%w: first meta page damaged", ErrCorrupt)
	}
	var best []byte
	var bestTx uint64
	for i := int64(0); i < 2; i++ {
		m := make([]byte, 80)
		if _, err := c.f.ReadAt(m, i*c.pageSize); err != nil {
			continue
		}
		if !validMeta(m, c.pageSize) {
			continue
		}
		if tx := binary.LittleEndian.Uint64(m[64:]); best == nil || tx > bestTx {
			best, bestTx = m, tx
		}
	}
	if best == nil {
		return 0, fmt.Errorf("%w: both meta pages are damaged", ErrCorrupt)
	}
	c.highWater = binary.LittleEndian.Uint64(best[56:])
	if c.highWater < 2 || c.highWater > uint64(c.size/c.pageSize) {
		return 0, fmt.Errorf("%w: file of %d bytes is truncated: its meta page names %d pages of %d bytes", ErrCorrupt, c.size, c.highWater, c.pageSize)
	}
	if fl := binary.LittleEndian.Uint64(best[48:]); fl != bboltNoFreelist {
		if fl < 2 || fl >= c.highWater {
			return 0, fmt.Errorf("%w: free list page %d outside the file's %d pages", ErrCorrupt, fl, c.highWater)
		}
		c.seen[fl] = true
	}
	return binary.LittleEndian.Uint64(best[32:]), nil
}

// validMeta reports whether m, the first 80 bytes of a meta page, is one bbolt
// would use: its magic, version and page size, and its checksum.
func validMeta(m []byte, pageSize int64) bool {
	h := fnv.New64a()
	h.Write(m[16:72])
	return binary.LittleEndian.Uint32(m[16:]) == bboltMagic && binary.LittleEndian.Uint32(m[20:]) == bboltVersion &&
		binary.LittleEndian.Uint64(m[72:]) == h.Sum64() && int64(binary.LittleEndian.Uint32(m[24:])) == pageSize
}

// page reads page id with its overflow pages.
func (c *pageChecker) page(id uint64) ([]byte, error) {
	if id < 2 || id >= c.highWater {
		return nil, fmt.Errorf("%w: page %d outside the file's %d pages", ErrCorrupt, id, c.highWater)
	}
	if c.seen[id] {
		return nil, fmt.Errorf("%w: page %d referenced twice", ErrCorrupt, id)
	}
	var hdr [bboltPageHeader]byte
	if _, err := c.f.ReadAt(hdr[:], int64(id)*c.pageSize); err != nil {
		return nil, fmt.Errorf("%w: page %d: %v", ErrCorrupt, id, err)
	}
	if self := binary.LittleEndian.Uint64(hdr[0:]); self != id {
		return nil, fmt.Errorf("%w: page %d identifies itself as %d", ErrCorrupt, id, self)
	}
	overflow := uint64(binary.LittleEndian.Uint32(hdr[12:]))
	if id+overflow >= c.highWater {
		return nil, fmt.Errorf("%w: page %d runs %d pages past the file's %d", ErrCorrupt, id, overflow, c.highWater)
	}
	for i := id; i <= id+overflow; i++ {
		if c.seen[i] {
			return nil, fmt.Errorf("%w: page %d referenced twice", ErrCorrupt, i)
		}
		c.seen[i] = true
	}
	buf := make([]byte, int64(overflow+1)*c.pageSize)
	if _, err := c.f.ReadAt(buf, int64(id)*c.pageSize); err != nil {
		return nil, fmt.Errorf("%w: page %d: %v", ErrCorrupt, id, err)
	}
	return buf, nil
}

// tree checks the page id and everything below it; keys must lie in [lo, hi).
func (c *pageChecker) tree(id uint64, lo, hi []byte, depth int) error {
	if depth > bboltMaxDepth {
		return fmt.Errorf("%w: pages nested deeper than %d at page %d", ErrCorrupt, bboltMaxDepth, id)
	}
	buf, err := c.page(id)
	if err != nil {
		return err
	}
	return c.node(buf, id, lo, hi, depth)
}

// node checks one page (or an inline bucket's page) held in buf.
func (c *pageChecker) node(buf []byte, id uint64, lo, hi []byte, depth int) error {
	if len(buf) < bboltPageHeader {
		return fmt.Errorf("%w: page %d shorter than its header", ErrCorrupt, id)
	}
	flags := binary.LittleEndian.Uint16(buf[8:])
	count := int(binary.LittleEndian.Uint16(buf[10:]))
	if flags != bboltBranch && flags != bboltLeaf {
		return fmt.Errorf("%w: page %d has type flags %#x, want a branch or leaf page", ErrCorrupt, id, flags)
	}
	if bboltPageHeader+count*bboltElement > len(buf) {
		return fmt.Errorf("%w: page %d: %d elements do not fit in it", ErrCorrupt, id, count)
	}
	slice := func(at int, pos, n uint32) ([]byte, bool) {
		start := uint64(at) + uint64(pos)
		end := start + uint64(n)
		if end > uint64(len(buf)) {
			return nil, false
		}
		return buf[start:end], true
	}
	var prev []byte
	for i := 0; i < count; i++ {
		at := bboltPageHeader + i*bboltElement
		e := buf[at : at+bboltElement]
		var key, value []byte
		var child uint64
		var bucket, ok bool
		if flags == bboltBranch {
			pos, ksize := binary.LittleEndian.Uint32(e[0:]), binary.LittleEndian.Uint32(e[4:])
			child = binary.LittleEndian.Uint64(e[8:])
			key, ok = slice(at, pos, ksize)
		} else {
			eflags, pos := binary.LittleEndian.Uint32(e[0:]), binary.LittleEndian.Uint32(e[4:])
			ksize, vsize := binary.LittleEndian.Uint32(e[8:]), binary.LittleEndian.Uint32(e[12:])
			var kv []byte
			if kv, ok = slice(at, pos, ksize+vsize); ok && ksize+vsize >= ksize {
				key, value = kv[:ksize], kv[ksize:]
			} else {
				ok = false
			}
			bucket = eflags&bboltBucketLeafFlag != 0
		}
		if !ok {
			return fmt.Errorf("%w: page %d: element %d points outside its page", ErrCorrupt, id, i)
		}
		if prev != nil && bytes.Compare(prev, key) >= 0 || lo != nil && bytes.Compare(key, lo) < 0 || hi != nil && bytes.Compare(key, hi) >= 0 {
			return fmt.Errorf("%w: page %d: key %d out of order", ErrCorrupt, id, i)
		}
		prev = key
		switch {
		case flags == bboltBranch:
			next := hi
			if i+1 < count {
				ne := buf[at+bboltElement : at+2*bboltElement]
				if next, ok = slice(at+bboltElement, binary.LittleEndian.Uint32(ne[0:]), binary.LittleEndian.Uint32(ne[4:])); !ok {
					return fmt.Errorf("%w: page %d: element %d points outside its page", ErrCorrupt, id, i+1)
				}
			}
			if err := c.tree(child, key, next, depth+1); err != nil {
				return err
			}
		case bucket:
			if len(value) < 16 {
				return fmt.Errorf("%w: page %d: bucket %d has a %d-byte header", ErrCorrupt, id, i, len(value))
			}
			if root := binary.LittleEndian.Uint64(value); root != 0 {
				if err := c.tree(root, nil, nil, depth+1); err != nil {
					return err
				}
			} else if err := c.node(value[16:], id, nil, nil, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
