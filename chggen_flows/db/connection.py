"""Which MongoDB server to use, and whether it can be reached.

An external server is used when the settings name one (``mongo_uri``, or
``mongo_host``/``mongo_port`` with optional credentials); otherwise the embedded
SecantusDB server under ``data_dir`` is used, started on demand.
"""

from __future__ import annotations

from urllib.parse import quote_plus

from chggen_flows.db.server import EmbeddedServer
from chggen_flows.errors import ConfigError, DatabaseError
from chggen_flows.settings import Settings, mask_uri

DEFAULT_MONGO_PORT = 27017
CHECK_TIMEOUT_MS = 3000


def resolve_uri(settings: Settings, start: bool = True) -> str:
    """The MongoDB connection string for ``settings`` (may hold credentials: never print it).

    Parameters
    ----------
    settings
        The settings; see :class:`~chggen_flows.settings.Settings` for how an external
        server is selected.
    start
        Start the embedded server when it does not run (else raise).

    Returns
    -------
    str
        A ``mongodb://`` URI without a database path.

    Raises
    ------
    ConfigError
        When a password is given without a user name.
    DatabaseError
        When the embedded server is needed, not running and ``start`` is False, or it
        cannot be started.
    """
    if settings.mongo_uri is not None:
        return _with_credentials(settings.mongo_uri.get_secret_value(), settings)
    if settings.uses_external_server:
        port = settings.mongo_port or DEFAULT_MONGO_PORT
        return _with_credentials(f"mongodb://{settings.mongo_host}:{port}/", settings)
    server = EmbeddedServer(settings.data_dir)
    if start:
        return server.start().uri
    info = server.status()
    if info is None:
        raise DatabaseError(
            f"the embedded database server for {settings.data_dir} is not running",
            hint="start it with: chggen db start",
        )
    return info.uri


def _with_credentials(uri: str, settings: Settings) -> str:
    """``uri`` with ``mongo_username`` / ``mongo_password`` filled in where it lacks them.

    Credentials written in the URI win; a password alone completes a URI that names
    only the user (``mongodb://alice@host/``), so it can stay out of the YAML file.

    Raises
    ------
    ConfigError
        When a password is set but no user name is given anywhere.
    """
    scheme, netloc, path, query = _split_uri(uri)
    user, _, hosts = netloc.rpartition("@")
    given = user
    if not user and settings.mongo_username:
        user = quote_plus(settings.mongo_username)
    if user and ":" not in user and settings.mongo_password is not None:
        user += ":" + quote_plus(settings.mongo_password.get_secret_value())
    if not user and settings.mongo_password is not None:
        raise ConfigError(
            "mongo_password is set but no MongoDB user name is given",
            hint="set mongo_username (CHGGEN_MONGO_USERNAME) or put the user in the URI",
        )
    if user == given:
        return uri
    return _join_uri(scheme, f"{user}@{hosts}", path, query)


def uri_with_database(uri: str, database: str) -> str:
    """``uri`` with ``database`` as its path (FireWorks' URI mode wants it there).

    The authentication database the original URI implied (its path, else ``admin``)
    is kept by an explicit ``authSource`` so that credentials still work.
    """
    scheme, netloc, path, query = _split_uri(uri)
    options = [opt for opt in query.split("&") if opt]
    has_auth_source = any(opt.lower().startswith("authsource=") for opt in options)
    if "@" in netloc and not has_auth_source:
        options.append(f"authSource={path or 'admin'}")
    return _join_uri(scheme, netloc, database, "&".join(options))


def _split_uri(uri: str) -> tuple[str, str, str, str]:
    """Scheme, ``[user[:password]@]hosts``, database path and options of a MongoDB URI.

    Hand-rolled rather than urllib's: a MongoDB URI may list several ``host:port``
    pairs, which urllib rejects.
    """
    scheme, rest = uri.split("://", 1)
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    path, _, query = rest[cut:].removeprefix("/").partition("?")
    return scheme, rest[:cut], path, query


def _join_uri(scheme: str, netloc: str, path: str, query: str) -> str:
    """Inverse of :func:`_split_uri`."""
    return f"{scheme}://{netloc}/{path}" + (f"?{query}" if query else "")


def check_connection(settings: Settings, start: bool = True) -> str:
    """Connect, authenticate and list the JobStore database; return the URI used.

    Parameters
    ----------
    settings
        The settings.
    start
        Start the embedded server when it is the one configured and not running.

    Raises
    ------
    ConfigError
        When the URI is malformed.
    DatabaseError
        When the server cannot be reached (3 s timeout), the credentials are wrong or
        missing, or the user lacks access to the database.
    """
    from pymongo import MongoClient
    from pymongo.errors import (
        ConfigurationError,
        InvalidURI,
        OperationFailure,
        PyMongoError,
    )

    uri = resolve_uri(settings, start=start)
    shown = mask_uri(uri)
    try:
        client: MongoClient = MongoClient(
            uri,
            serverSelectionTimeoutMS=CHECK_TIMEOUT_MS,
            connectTimeoutMS=CHECK_TIMEOUT_MS,
            socketTimeoutMS=CHECK_TIMEOUT_MS,
        )
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        raise ConfigError(
            f"invalid MongoDB URI {shown}: {exc}",
            hint="the form is mongodb://[user:password@]host[:port][/?options]",
        ) from None
    try:
        client.admin.command("ping")
        # Listing needs authorisation where ping does not: catches missing credentials.
        client[settings.database].list_collection_names()
    except OperationFailure as exc:
        if exc.code == 18:  # AuthenticationFailed
            raise DatabaseError(
                f"authentication failed for the MongoDB server at {shown}",
                hint="check mongo_username / mongo_password (CHGGEN_MONGO_USERNAME, "
                "CHGGEN_MONGO_PASSWORD) or the credentials in the URI, and authSource",
            ) from None
        if exc.code == 13:  # Unauthorized
            raise DatabaseError(
                f"the MongoDB server at {shown} refused access to database "
                f"{settings.database!r}: {exc.details.get('errmsg', exc) if exc.details else exc}",
                hint="give credentials (CHGGEN_MONGO_USERNAME / CHGGEN_MONGO_PASSWORD) of a "
                "user with readWrite on the database",
            ) from None
        raise DatabaseError(
            f"the MongoDB server at {shown} failed a basic command: {exc}",
            hint="check the server's logs",
        ) from None
    except PyMongoError as exc:
        raise DatabaseError(
            f"cannot reach a MongoDB server at {shown} "
            f"within {CHECK_TIMEOUT_MS / 1000:.0f} s ({type(exc).__name__})",
            hint="check that the server runs and the host/port are right; unset "
            "CHGGEN_MONGO_URI to use the embedded server",
        ) from None
    finally:
        client.close()
    return uri
