//go:build !race && (darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package loop

import "github.com/upgate/upgate/internal/testutil"

// Owners of an allocation, as allocOwners names them (testutil.AllocOwners).
const (
	ownerUpgate = testutil.OwnerUpgate
	ownerGnet   = testutil.OwnerGnet
)

var (
	allocOwners = testutil.AllocOwners
	profileBy   = testutil.ProfileBy
)
