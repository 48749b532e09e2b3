"""`python -m sandbox`: serve the stand-in systems on 127.0.0.1:$HANDOFF_SANDBOX_PORT (8765)."""

from sandbox.server import main

main()
