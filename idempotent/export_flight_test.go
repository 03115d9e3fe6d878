package idempotent

// FlightWaiters is the number of calls waiting in memory on a flight of
// store, whatever the record.
func FlightWaiters(store Store) int {
	flights.mu.Lock()
	defer flights.mu.Unlock()
	n := 0
	for k, f := range flights.m {
		if k.store == store {
			n += f.waiters
		}
	}
	return n
}
