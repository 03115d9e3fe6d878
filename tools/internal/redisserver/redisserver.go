// Package redisserver starts a private redis-server (Debian's package, which
// redis/ctl.sh installs) on a free loopback port for the tools: the chaos
// run's tests and make bench's Redis sides. It keeps nothing on disk (no
// RDB, no AOF, a temporary working directory) and never evicts
// (maxmemory-policy noeviction), the settings the Redis store documents.
//
// The Redis store's own tests have the same helper inside its module
// (idempotent/redisstore/internal/testredis), which tools/ cannot import.
package redisserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a running redis-server.
type Server struct {
	// Addr is its host:port.
	Addr string

	cmd    *exec.Cmd
	exited <-chan struct{} // closed once cmd has exited
	dir    string
}

// Start launches redis-server and waits until it answers PING. A port taken
// between choosing and binding makes the server exit; Start then tries
// another one, three times in all.
func Start() (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server is missing (make redis-install: redis/ctl.sh install)")
	}
	dir, err := os.MkdirTemp("", "idemlambda-redis-")
	if err != nil {
		return nil, err
	}
	var errs []error
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
			"--dir", dir, "--maxmemory-policy", "noeviction", "--daemonize", "no")
		if err := cmd.Start(); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, exited: exited, dir: dir}
		if err := s.wait(); err != nil {
			_ = cmd.Process.Kill()
			<-exited
			errs = append(errs, err)
			continue
		}
		return s, nil
	}
	_ = os.RemoveAll(dir)
	return nil, errors.Join(errs...)
}

func (s *Server) wait() error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	for range 200 {
		select {
		case <-s.exited:
			return fmt.Errorf("redis-server on %s exited at start", s.Addr)
		default:
		}
		if c.Ping(context.Background()).Err() == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s did not answer in 10 s", s.Addr)
}

// Close stops the server and removes its working directory.
func (s *Server) Close() {
	if s == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	_ = os.RemoveAll(s.dir)
}
