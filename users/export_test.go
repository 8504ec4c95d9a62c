package users

// Len is how many keys l remembers; tests check the MaxKeys bound with it.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.order.Len()
}
