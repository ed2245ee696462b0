// Command web is the web process of tether up's demo (examples/Procfile): an
// HTTP server on 127.0.0.1:$PORT, loopback only, that says $GREETING and
// shuts down gracefully on SIGTERM.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(0)
	port := os.Getenv("PORT")
	if port == "" {
		port = "5000"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		log.Fatal(err)
	}
	greeting := os.Getenv("GREETING")
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			log.Printf("%s %s from %s", r.Method, r.URL.Path, r.RemoteAddr)
			fmt.Fprintf(w, "%s (%s)\n", greeting, os.Getenv("PS"))
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	served := make(chan error, 1)
	// Owner: main. Ends when Shutdown closes the listener, or on an error.
	go func() { served <- srv.Serve(ln) }()
	log.Printf("listening on http://%s (try: curl http://%s/)", ln.Addr(), ln.Addr())

	select {
	case err := <-served:
		log.Fatal(err)
	case <-ctx.Done():
	}
	log.Printf("%v: shutting down", context.Cause(ctx))
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Fatal(err)
	}
	log.Print("bye")
}
