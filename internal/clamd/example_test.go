package clamd_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/clamd"
)

// A scan of an upload, and what each outcome means for it. (Not run: it needs a clamd.)
func ExampleClient_Scan() {
	c := clamd.New("unix", "/run/clamav/clamd.ctl")
	c.MaxStream = 25 << 20 // clamd's StreamMaxLength: longer uploads are refused before they are sent
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	f, err := os.Open("upload.bin")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	res, err := c.Scan(ctx, f)
	switch {
	case errors.Is(err, clamd.ErrSizeLimit):
		fmt.Println("too large to scan: refused")
	case errors.Is(err, clamd.ErrUnavailable):
		fmt.Println("clamd unavailable: held, scanned again later")
	case err != nil:
		fmt.Println("scan failed, refused:", err)
	case res.Infected:
		fmt.Println("infected:", res.Signature)
	default:
		fmt.Println("clean")
	}
}

// A check at start that clamd is there, and which version it is.
func ExampleClient_Version() {
	c := clamd.New("tcp", "127.0.0.1:3310")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		fmt.Println(err) // wraps clamd.ErrUnavailable when nothing listens
		return
	}
	v, err := c.Version(ctx)
	fmt.Println(v, err) // e.g. "ClamAV 1.4.6/27480/Tue Dec  2 09:25:23 2025 <nil>"
}
