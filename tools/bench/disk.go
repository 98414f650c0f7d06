package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/loadgen"
)

// diskWatch samples the block device that holds the database's files, so
// the report can say which trials had the storage stop under them: every
// read waits for its audit row's commit, and a commit for the WAL's flush,
// so a second in which the device completes no write is a second in which
// no read is answered, whatever the software does.
type diskWatch struct {
	major, minor uint64
	mu           sync.Mutex
	samples      []diskSample
}

type diskSample struct {
	at       time.Time
	written  uint64 // writes completed since boot
	inFlight uint64 // I/Os in progress
}

// diskSampleEvery is the resolution of a stall's length.
const diskSampleEvery = 50 * time.Millisecond

// watchDisk starts sampling the device holding path until ctx ends. It
// returns nil when the device is not found in /proc/diskstats (not Linux,
// a network file system): the report then shows no stalls column.
func watchDisk(ctx context.Context, path string) *diskWatch {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nil
	}
	dev := uint64(st.Dev) //nolint:unconvert // int32 on some platforms
	w := &diskWatch{
		major: (dev>>8)&0xfff | (dev>>32)&^uint64(0xfff),
		minor: dev&0xff | (dev>>12)&^uint64(0xff),
	}
	if _, ok := w.sample(); !ok {
		return nil
	}
	go func() {
		t := time.NewTicker(diskSampleEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if s, ok := w.sample(); ok {
					w.mu.Lock()
					w.samples = append(w.samples, s)
					w.mu.Unlock()
				}
			}
		}
	}()
	return w
}

// sample reads the device's line of /proc/diskstats: major, minor, name,
// then reads completed, merged, sectors, ms, writes completed (the 8th
// field), merged, sectors, ms, I/Os in progress (the 12th).
func (w *diskWatch) sample() (diskSample, bool) {
	f, err := os.Open("/proc/diskstats")
	if err != nil {
		return diskSample{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 12 || fs[0] != strconv.FormatUint(w.major, 10) || fs[1] != strconv.FormatUint(w.minor, 10) {
			continue
		}
		written, err1 := strconv.ParseUint(fs[7], 10, 64)
		inFlight, err2 := strconv.ParseUint(fs[11], 10, 64)
		if err1 != nil || err2 != nil {
			return diskSample{}, false
		}
		return diskSample{at: time.Now(), written: written, inFlight: inFlight}, true
	}
	return diskSample{}, false
}

// longestStall is the longest time within [from, to) during which the
// device had I/O in progress and completed no write, to the sampling's
// resolution; zero when it never stalled for a whole sample.
func (w *diskWatch) longestStall(from, to time.Time) time.Duration {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var longest time.Duration
	var since time.Time // the last sample that saw progress, in a stall
	for i := 1; i < len(w.samples); i++ {
		prev, s := w.samples[i-1], w.samples[i]
		if s.at.Before(from) || !s.at.Before(to) {
			since = time.Time{}
			continue
		}
		if s.written == prev.written && s.inFlight > 0 {
			if since.IsZero() {
				since = prev.at
			}
			longest = max(longest, s.at.Sub(since))
		} else {
			since = time.Time{}
		}
	}
	return longest
}

// trialStall is the longest write stall while trial t was measured.
func (w *diskWatch) trialStall(t loadgen.Result) time.Duration {
	return w.longestStall(t.StartedAt, t.StartedAt.Add(time.Duration(t.Duration*float64(time.Second))))
}

// stallsOf annotates each trial with its longest write stall in ms.
func (w *diskWatch) stallsOf(s *scenarioResult) {
	if w == nil {
		return
	}
	s.DiskStallsMS = make([]float64, len(s.Trials))
	for i, t := range s.Trials {
		s.DiskStallsMS[i] = float64(w.trialStall(t).Milliseconds())
	}
}

// stallCell renders a stall for the trials table.
func stallCell(ms float64) string {
	if ms == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", ms)
}

// syncCeiling is the storage's ceiling for commits: one writer appending
// 8 KB (a WAL page) to a file and calling fdatasync, as a commit waits for
// its WAL flush. Every read waits for its audit row's commit, so the
// flush's latency is a floor under every request's, whatever the CPUs do.
type syncCeiling struct {
	PerSec            float64 // flushes per second, one after another
	P50MS, P99MS, Max float64 // latency of one write and flush, ms
}

// measureSync writes and flushes in dir for d, then removes its file.
func measureSync(dir string, d time.Duration) (syncCeiling, error) {
	f, err := os.CreateTemp(dir, "sync-ceiling-*")
	if err != nil {
		return syncCeiling{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	page := make([]byte, 8192)
	var lat []time.Duration
	start := time.Now()
	for time.Since(start) < d {
		t := time.Now()
		if _, err := f.Write(page); err != nil {
			return syncCeiling{}, err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return syncCeiling{}, err
		}
		lat = append(lat, time.Since(t))
	}
	return summarizeSync(lat, time.Since(start)), nil
}

func summarizeSync(lat []time.Duration, took time.Duration) syncCeiling {
	if len(lat) == 0 {
		return syncCeiling{}
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
	return syncCeiling{
		PerSec: float64(len(lat)) / took.Seconds(),
		P50MS:  ms(lat[len(lat)/2]),
		P99MS:  ms(lat[len(lat)*99/100]),
		Max:    ms(lat[len(lat)-1]),
	}
}
