"""Which MongoDB server to use, and whether it can be reached.

An external server is used when the settings name one (``mongo_uri``, or
``mongo_host``/``mongo_port`` with optional credentials); otherwise the embedded
SecantusDB server under ``data_dir`` is used, started on demand.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from chggen_flows.db.server import EmbeddedServer
from chggen_flows.errors import ConfigError, DatabaseError
from chggen_flows.settings import Settings, mask_uri

DEFAULT_MONGO_PORT = 27017
CHECK_TIMEOUT_MS = 3000
URI_FORM = "the form is mongodb://[user:password@]host[:port][,host[:port]...][/database][?options]"


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
    server = EmbeddedServer(settings.data_dir, auth=settings.embedded_auth)
    if start:
        info = server.start()
        if info.note:  # an upgrade done on the way: said once, on stderr
            print(f"chggen: {info.note}", file=sys.stderr)
        return info.uri
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
        When a password is set but no user name is given anywhere, or the URI is
        malformed.
    """
    parts = parse_mongo_uri(uri)
    user, password = parts.username, parts.password
    if not user and settings.mongo_username:
        user = settings.mongo_username
    if user and not password and settings.mongo_password is not None:
        password = settings.mongo_password.get_secret_value()
    if not user and settings.mongo_password is not None:
        raise ConfigError(
            "mongo_password is set but no MongoDB user name is given",
            hint="set mongo_username (CHGGEN_MONGO_USERNAME) or put the user in the URI",
        )
    if (user, password) == (parts.username, parts.password):
        return uri
    return parts.replace(username=user, password=password).uri()


def uri_with_database(uri: str, database: str) -> str:
    """``uri`` with ``database`` as its path (FireWorks' URI mode wants it there).

    The authentication database the original URI implied (its path, else ``admin``)
    is kept by an explicit ``authSource`` so that credentials still work.
    """
    parts = parse_mongo_uri(uri)
    options = parts.options
    has_auth_source = any(key.lower() == "authsource" for key in parts.parsed_options)
    if parts.username and not has_auth_source:
        options = "&".join(o for o in (options, f"authSource={parts.database or 'admin'}") if o)
    return parts.replace(database=database, options=options).uri()


@dataclass(frozen=True)
class MongoURI:
    """The parts of a MongoDB connection string, as :func:`parse_mongo_uri` read them.

    Attributes
    ----------
    scheme
        ``mongodb`` or ``mongodb+srv``.
    username, password
        Credentials (decoded), or None.
    hosts
        ``(host, port)`` pairs, port None where the URI gives none; every member of a
        replica set (``mongodb://a:27017,b:27017/db?replicaSet=rs0``).
    database
        The database path (decoded), or None.
    options
        The options text after ``?``, exactly as written (pymongo's parsed values,
        read-preference tags and all, have no inverse).
    parsed_options
        The options as pymongo parsed them.
    """

    scheme: str
    username: str | None
    password: str | None
    hosts: tuple[tuple[str, int | None], ...]
    database: str | None
    options: str
    parsed_options: dict[str, Any]

    def replace(self, **changes: Any) -> MongoURI:
        """A copy with some parts changed."""
        return dataclasses.replace(self, **changes)

    def uri(self) -> str:
        """The connection string of these parts (credentials and names percent-encoded)."""
        userinfo = ""
        if self.username:
            userinfo = quote_plus(self.username)
            if self.password:
                userinfo += ":" + quote_plus(self.password)
            userinfo += "@"
        hosts = ",".join(_format_host(host, port) for host, port in self.hosts)
        database = quote_plus(self.database) if self.database else ""
        return f"{self.scheme}://{userinfo}{hosts}/{database}" + (
            f"?{self.options}" if self.options else ""
        )


def parse_mongo_uri(uri: str) -> MongoURI:
    """Parse a MongoDB URI with pymongo's own parser (``pymongo.uri_parser.parse_uri``).

    A ``mongodb+srv://`` URI is parsed as the ``mongodb://`` URI of the same text: its
    syntax is the same, and ``parse_uri`` would otherwise look the SRV record up in the
    DNS, which only the connection itself should do.

    Raises
    ------
    ConfigError
        When pymongo rejects the URI (the message never shows the password).
    """
    from pymongo.errors import ConfigurationError, InvalidURI
    from pymongo.uri_parser import parse_uri

    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("mongodb", "mongodb+srv"):
        raise ConfigError(
            f"invalid MongoDB URI {mask_uri(uri)}: it must start with mongodb:// or mongodb+srv://",
            hint=URI_FORM,
        )
    plain = f"mongodb://{rest}"
    srv_only = ("srvservicename", "srvmaxhosts")
    try:
        with warnings.catch_warnings():
            # Unknown options: MongoClient warns about them when it connects.
            warnings.simplefilter("ignore")
            if scheme == "mongodb+srv":
                # pymongo allows these only on mongodb+srv URIs; checked without them.
                base, _, query = plain.partition("?")
                kept = [
                    o for o in query.split("&") if o and o.split("=")[0].lower() not in srv_only
                ]
                plain = base + ("?" + "&".join(kept) if kept else "")
            parsed = parse_uri(plain, default_port=None, warn=True)
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        raise ConfigError(f"invalid MongoDB URI {mask_uri(uri)}: {exc}", hint=URI_FORM) from None
    return MongoURI(
        scheme=scheme,
        username=parsed["username"] or None,
        password=parsed["password"] or None,
        hosts=tuple(parsed["nodelist"]),
        database=parsed["database"],
        # parse_uri, too, takes everything after the first "?" as the options.
        options=uri.partition("?")[2],
        parsed_options=dict(parsed["options"]),
    )


def _format_host(host: str, port: int | None) -> str:
    if "/" in host:  # a Unix domain socket path, percent-encoded in URIs
        return quote_plus(host)
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


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
            hint=URI_FORM,
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
