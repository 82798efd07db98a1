package lease

import "time"

// Clock tells the lessor the time. Tests inject a fake one so that expiry is
// decided by the test, not by the machine's speed.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
