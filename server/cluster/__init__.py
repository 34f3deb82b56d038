"""Several nodes on one PostgreSQL and one Redis (issue 17; docs/deployment.md, "A cluster").

Redis is the shared store and message bus, as in LiveKit's distributed mode: every node reports
its load under a key that expires unless renewed (`registry`), a hearing is placed whole on one
node with an atomic SET NX (`placement`), and nodes tell each other what must reach connections
on every node (ended sessions, hearing states) over one pub/sub channel (`bus`). Nothing here
is a protocol of our own: keys with TTLs, SET NX, a compare-and-renew Lua script and PUBLISH.

Imports only `server.ids` and the `redis` package; the web layer wires it in when
`cluster.redis_url` is set. Without it nothing of this package is imported.
"""
