package rie

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// holdAFunction is the helper process of TestEmulatorDiesWithItsParent
// (TestMain runs it when RIE_TEST_HELPER=1): it starts a Function, prints its
// emulator's pid and waits to be killed.
func holdAFunction() {
	fn, err := Start(context.Background(), Config{RIE: rieBinary, Binary: echoBinary, Name: "EchoFunction", Output: io.Discard})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("pid", fn.instances[0].cmd.Process.Pid)
	select {}
}

// TestEmulatorDiesWithItsParent: an emulator does not outlive a process that
// dies without closing its Function (SIGKILL here; a broken stdout pipe too).
func TestEmulatorDiesWithItsParent(t *testing.T) {
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(), "RIE_TEST_HELPER=1")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	var pid int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "pid "); ok {
			pid, _ = strconv.Atoi(p)
			break
		}
		if strings.HasPrefix(sc.Text(), "error") {
			t.Fatal(sc.Text())
		}
	}
	if pid == 0 {
		t.Fatal("the helper printed no emulator pid")
	}
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	// The emulator is a child of the dead helper, reparented and reaped by
	// init once it exits; poll for its end (bounded).
	for range 100 {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	t.Errorf("the emulator (pid %d) outlived the process that started it", pid)
}
