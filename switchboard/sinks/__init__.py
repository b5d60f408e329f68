"""Where submissions go: implementations of `ports.Sink`, one module per destination."""
