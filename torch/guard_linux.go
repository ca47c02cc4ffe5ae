package torch

import "golang.org/x/sys/unix"

// threadID identifies the calling OS thread.
func threadID() int64 { return int64(unix.Gettid()) }
