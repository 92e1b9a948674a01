package httpblock

import "time"

// Observer is the event interface of the http blocks: a metrics backend
// given to the runtime as its engine.Observer implements it to count
// answered requests by route. An http.in node resolves its instrument at
// deploy (engine.Setup.Observer), so a request updates it without looking
// up or formatting labels.
type Observer interface {
	// Requests returns the instrument of one http.in route. pattern is the
	// route's ServeMux pattern ("GET /users/{id}"), never a request path.
	Requests(flow, node, pattern string) RequestObserver
}

// RequestObserver records answered requests: the status sent and the time
// from routing to the run's end.
type RequestObserver interface {
	Observe(status int, d time.Duration)
}
