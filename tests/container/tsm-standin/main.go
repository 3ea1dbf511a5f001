// Command tsm-standin serves the configfs-tsm report interface of a TDX guest kernel over FUSE, for
// the container test: `ratls serve` with the configfs-tsm provider runs unchanged in its container
// against this tree, bind-mounted where deploy/compose.yaml mounts /sys/kernel/config/tsm.
//
// What it keeps from the kernel (Documentation/ABI/testing/configfs-tsm): report/ and every entry
// are root's and 0755, so creating an entry needs uid 0 (or CAP_DAC_OVERRIDE); an entry has
// provider (0444, "tdx_guest"), generation (0444, bumped by every write to inblob), inblob (0200,
// at most 64 bytes) and outblob (0444, the quote over the latest inblob). Mounted with
// default_permissions, so the kernel checks those modes as it would on configfs.
//
// The quotes come from a simulated TDX world: outblob asks the helper listening on -quote-socket
// (POST /quote, body = REPORTDATA, answer = quote bytes).
//
//	tsm-standin -mount DIR -quote-socket PATH
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

const reportDataSize = 64

var quotes *http.Client

func dirAttr(out *fuse.Attr) {
	out.Mode = syscall.S_IFDIR | 0o755
	out.Uid, out.Gid = 0, 0
	out.Nlink = 2
}

// root is the configfs-tsm root; it holds report/.
type root struct{ fs.Inode }

func (r *root) OnAdd(ctx context.Context) {
	ch := r.NewPersistentInode(ctx, &reportDir{}, fs.StableAttr{Mode: syscall.S_IFDIR})
	r.AddChild("report", ch, false)
}

func (r *root) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	dirAttr(&out.Attr)
	return 0
}

// reportDir is report/: mkdir makes an entry, rmdir removes it.
type reportDir struct{ fs.Inode }

func (d *reportDir) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	dirAttr(&out.Attr)
	return 0
}

func (d *reportDir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if d.GetChild(name) != nil {
		return nil, syscall.EEXIST
	}
	e := &entry{}
	ch := d.NewInode(ctx, e, fs.StableAttr{Mode: syscall.S_IFDIR})
	for _, a := range []struct {
		name string
		mode uint32
	}{{"provider", 0o444}, {"generation", 0o444}, {"inblob", 0o200}, {"outblob", 0o444}} {
		ch.AddChild(a.name, ch.NewInode(ctx, &attr{entry: e, name: a.name, mode: a.mode}, fs.StableAttr{Mode: syscall.S_IFREG}), false)
	}
	dirAttr(&out.Attr)
	return ch, 0
}

func (d *reportDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	if d.GetChild(name) == nil {
		return syscall.ENOENT
	}
	d.RmChild(name)
	return 0
}

// entry is one report entry: its inblob, generation and the quote for them.
type entry struct {
	fs.Inode
	mu       sync.Mutex
	gen      uint64
	inblob   []byte
	outblob  []byte
	quoteGen uint64
}

func (e *entry) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	dirAttr(&out.Attr)
	return 0
}

func (e *entry) read(name string) ([]byte, syscall.Errno) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch name {
	case "provider":
		return []byte("tdx_guest\n"), 0
	case "generation":
		return []byte(fmt.Sprintf("%d\n", e.gen)), 0
	case "outblob":
		if len(e.inblob) != reportDataSize {
			return nil, syscall.EINVAL
		}
		if e.outblob == nil || e.quoteGen != e.gen {
			q, err := quote(e.inblob)
			if err != nil {
				log.Printf("quote: %v", err)
				return nil, syscall.EIO
			}
			e.outblob, e.quoteGen = q, e.gen
		}
		return e.outblob, 0
	}
	return nil, syscall.EACCES
}

// attr is an attribute file of an entry. Reads and writes go straight to the entry (direct I/O),
// as configfs attributes do: nothing is cached by the page cache.
type attr struct {
	fs.Inode
	entry *entry
	name  string
	mode  uint32
}

func (a *attr) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | a.mode
	out.Uid, out.Gid = 0, 0
	out.Nlink = 1
	// size 0 like configfs attributes: readers read until EOF
	return 0
}

func (a *attr) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	// O_TRUNC on open arrives as a size change; configfs ignores it too.
	return a.Getattr(ctx, f, out)
}

func (a *attr) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

func (a *attr) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	data, errno := a.entry.read(a.name)
	if errno != 0 {
		return nil, errno
	}
	if off >= int64(len(data)) {
		return fuse.ReadResultData(nil), 0
	}
	end := off + int64(len(dest))
	if end > int64(len(data)) {
		end = int64(len(data))
	}
	return fuse.ReadResultData(data[off:end]), 0
}

func (a *attr) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if a.name != "inblob" {
		return 0, syscall.EACCES
	}
	if off != 0 || len(data) > reportDataSize {
		return 0, syscall.EINVAL
	}
	e := a.entry
	e.mu.Lock()
	defer e.mu.Unlock()
	// The kernel pads a short inblob with zeros and bumps generation on every write.
	e.inblob = make([]byte, reportDataSize)
	copy(e.inblob, data)
	e.gen++
	return uint32(len(data)), 0
}

func quote(reportData []byte) ([]byte, error) {
	res, err := quotes.Post("http://quote/quote", "application/octet-stream", bytes.NewReader(reportData))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("quote helper answered %d: %s", res.StatusCode, body)
	}
	return body, nil
}

func main() {
	mount := flag.String("mount", "", "directory to mount the configfs-tsm tree on")
	socket := flag.String("quote-socket", "", "unix socket of the quote helper")
	flag.Parse()
	if *mount == "" || *socket == "" {
		log.Fatal("usage: tsm-standin -mount DIR -quote-socket PATH")
	}
	quotes = &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", *socket)
		}},
	}
	zero := time.Duration(0)
	server, err := fs.Mount(*mount, &root{}, &fs.Options{
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{
			// other users (the container's processes) get in; the kernel then checks modes itself
			AllowOther:  true,
			Options:     []string{"default_permissions"},
			FsName:      "tsm-standin",
			Name:        "configfs-tsm",
			DirectMount: true,
		},
	})
	if err != nil {
		log.Fatalf("mount %s: %v", *mount, err)
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		if err := server.Unmount(); err != nil {
			log.Printf("unmount: %v", err)
			os.Exit(1)
		}
	}()
	server.Wait()
}
