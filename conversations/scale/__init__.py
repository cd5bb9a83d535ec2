"""Running the platform as several processes (scale mode): the Procfile runner used by
`bin/serve-scale` and the multi-process tests, and the middleware that answers a
database outage with a 503. See docs/deployment.md."""
