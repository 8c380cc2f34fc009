package tlscert

import (
	"os"
	"slices"
	"sync"
	"syscall"
	"time"
)

// fingerprint is what a poll compares of a file: a change of any field,
// including the file appearing or going, or a new inode (a symbolic link
// switched to a new file, as Kubernetes updates a mounted secret), means
// the file changed.
type fingerprint struct {
	exists  bool
	modTime time.Time
	size    int64
	dev     uint64
	ino     uint64
}

// files lists every file of the Store, in a fixed order.
func (s *Store) files() []string {
	files := make([]string, 0, 2*len(s.opts.Pairs)+1)
	for _, p := range s.opts.Pairs {
		files = append(files, p.Cert, p.Key)
	}
	if s.opts.ClientCA != "" {
		files = append(files, s.opts.ClientCA)
	}
	return files
}

// fingerprints stats every file, following symbolic links.
func (s *Store) fingerprints() []fingerprint {
	files := s.files()
	fps := make([]fingerprint, len(files))
	for i, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			continue
		}
		fps[i] = fingerprint{exists: true, modTime: fi.ModTime(), size: fi.Size()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			fps[i].dev, fps[i].ino = uint64(st.Dev), uint64(st.Ino)
		}
	}
	return fps
}

// Check reloads the files if any changed since the latest load attempt,
// and reports whether it tried. A failed attempt is not repeated until a
// file changes again.
func (s *Store) Check() (reloaded bool, err error) {
	now := s.fingerprints()
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(now, s.seen) {
		return false, nil
	}
	return true, s.reloadLocked()
}

// Watch polls the files every interval and reloads them when one changes
// (Check); onReload, when not nil, is called after each attempt with its
// error, from the watching goroutine. The returned function stops the
// watch and waits for it to end.
func (s *Store) Watch(interval time.Duration, onReload func(error)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if tried, err := s.Check(); tried && onReload != nil {
					onReload(err)
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}
