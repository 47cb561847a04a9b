"""The server's limits and their defaults, in a module of their own so that
the command line can show them without importing FastAPI."""

DEFAULT_MAX_BODY = 1 << 20  # bytes: room for a context of text many times over
DEFAULT_HEADER_TIMEOUT = 10.0  # seconds from a request's first byte to the end of its headers
DEFAULT_SHUTDOWN_GRACE = 0.5  # seconds requests still generating get on Ctrl-C or SIGTERM: all end within a second
DEFAULT_MAX_BATCH = 8  # sequences decoded together: past a few, a pass takes longer per sequence
MAX_STOP_STRINGS = 4  # stop strings a request may give, as OpenAI's API
MAX_CHOICES = 16  # choices per prompt a request may ask for (n): each is a sequence of the batch
MAX_EMBEDDING_INPUTS = 2048  # inputs of one /v1/embeddings request, as OpenAI's API
# The names a server on a loopback address answers to unless told others:
# what a browser sends for it, never a name an attacker's DNS can point there.
LOOPBACK_HOSTS = ("localhost", "*.localhost", "127.0.0.1", "::1")
