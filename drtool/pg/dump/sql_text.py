"""What dump SQL says, read as text: the roles a schema script references and the extensions
it creates (``pg_restore --schema-only`` output), and role definitions in ``pg_dumpall
--globals-only`` output. Only statement shapes pg_dump itself writes are recognised."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# An SQL identifier as pg_dump's fmtId writes it: bare lowercase, or double-quoted.
_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
IDENT = _IDENT
_LIST = rf"{_IDENT}(?:, *{_IDENT})*"
_QUALIFIED = rf"{_IDENT}\.{_IDENT}"

_OWNER = re.compile(rf"^ALTER .+ OWNER TO ({_IDENT});$")
_GRANT = re.compile(
    rf"^(?:GRANT|REVOKE) .+ (?:TO|FROM) ({_LIST})"
    rf"(?: WITH GRANT OPTION)?(?: GRANTED BY ({_IDENT}))?;$"
)
_DEFAULT_FOR = re.compile(rf"^ALTER DEFAULT PRIVILEGES FOR ROLE ({_IDENT}) ")
_DEFAULT_TO = re.compile(rf" (?:TO|FROM) ({_LIST});$")
_POLICY = re.compile(
    rf"^CREATE POLICY {_IDENT} ON {_QUALIFIED}"
    rf"(?: AS (?:PERMISSIVE|RESTRICTIVE))?(?: FOR [A-Z]+)? TO ({_LIST})(?: |;|$)"
)
_EXTENSION = re.compile(rf"^CREATE EXTENSION IF NOT EXISTS ({_IDENT})")
_SESSION_AUTH = re.compile(rf"^SET SESSION AUTHORIZATION ({_IDENT});$")

_CREATE_ROLE = re.compile(rf"^CREATE ROLE ({_IDENT});$")
_ALTER_ROLE_WITH = re.compile(rf"^ALTER ROLE ({_IDENT}) WITH (.+);$")
_ALTER_ROLE_SET = re.compile(rf"^ALTER ROLE ({_IDENT}) SET (.+);$")
_MEMBERSHIP = re.compile(
    rf"^GRANT ({_IDENT}) TO ({_IDENT})((?: WITH [A-Z]+ (?:OPTION|TRUE|FALSE)"
    rf"(?:, [A-Z]+ (?:OPTION|TRUE|FALSE))*)?)(?: GRANTED BY {_IDENT})?;$"
)
# Role attributes pg_dumpall writes after ALTER ROLE ... WITH (never PASSWORD: drtool uses
# --no-role-passwords). Anything else means the line is not one we understand.
_ATTRIBUTE = re.compile(
    r"(?:NO)?(?:SUPERUSER|INHERIT|CREATEROLE|CREATEDB|LOGIN|REPLICATION|BYPASSRLS)"
    r"|CONNECTION LIMIT -?\d+|VALID UNTIL '[^'\\]*'"
)
_PSEUDO_ROLES = frozenset({"public", "current_user", "session_user", "current_role"})


def unquote(ident: str) -> str:
    if ident.startswith('"'):
        return ident[1:-1].replace('""', '"')
    return ident.lower()


def quote_ident(name: str) -> str:
    """``name`` as a quoted identifier (always valid, keywords included)."""
    return '"' + name.replace('"', '""') + '"'


def _names(text: str) -> list[str]:
    return [unquote(m) for m in re.findall(_IDENT, text)]


def _is_role(name: str, raw: str) -> bool:
    # Unquoted PUBLIC / CURRENT_USER are keywords; pg_* roles are built in everywhere.
    bare = not raw.startswith('"')
    return not (bare and name in _PSEUDO_ROLES) and not name.startswith("pg_")


@dataclass(frozen=True)
class SchemaFacts:
    """Roles a schema script needs, by why it needs them, and the extensions it creates."""

    owners: set[str] = field(default_factory=set)
    grantees: set[str] = field(default_factory=set)
    policy_roles: set[str] = field(default_factory=set)
    extensions: list[str] = field(default_factory=list)
    # Roles of SET SESSION AUTHORIZATION (grants made by another grantor than the owner).
    session_roles: set[str] = field(default_factory=set)

    def roles(self, with_owners_and_grants: bool = True) -> set[str]:
        """Every role referenced; without owners and grants (``--no-owner --no-privileges``)
        only the roles that policies name remain."""
        if not with_owners_and_grants:
            return set(self.policy_roles)
        return self.owners | self.grantees | self.policy_roles | self.session_roles

    def mapped(self, mapping: dict[str, str]) -> SchemaFacts:
        """These facts with roles renamed as ``--role-map`` renames them."""

        def m(roles: set[str]) -> set[str]:
            return {mapping.get(r, r) for r in roles}

        return SchemaFacts(
            m(self.owners),
            m(self.grantees),
            m(self.policy_roles),
            list(self.extensions),
            m(self.session_roles),
        )


def _add_roles(target: set[str], listed: str) -> None:
    for raw in re.findall(_IDENT, listed):
        name = unquote(raw)
        if _is_role(name, raw):
            target.add(name)


def schema_facts(sql_text: str) -> SchemaFacts:
    """Scan ``pg_restore --schema-only`` output (one statement start per line, as pg_dump
    writes them) for the roles and extensions it needs."""
    facts = SchemaFacts()
    for line in sql_text.splitlines():
        if not line or line.startswith("--"):
            continue
        if match := _OWNER.match(line):
            _add_roles(facts.owners, match.group(1))
        elif match := _DEFAULT_FOR.match(line):
            _add_roles(facts.grantees, match.group(1))
            if grant := _DEFAULT_TO.search(line):
                _add_roles(facts.grantees, grant.group(1))
        elif match := _GRANT.match(line):
            _add_roles(facts.grantees, match.group(1))
            if match.group(2):
                _add_roles(facts.grantees, match.group(2))
        elif match := _POLICY.match(line):
            _add_roles(facts.policy_roles, match.group(1))
        elif match := _EXTENSION.match(line):
            facts.extensions.append(unquote(match.group(1)))
        elif match := _SESSION_AUTH.match(line):
            _add_roles(facts.session_roles, match.group(1))
    return facts


@dataclass
class RoleDefinition:
    """One role as ``pg_dumpall --globals-only`` defines it."""

    name: str
    attributes: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)  # "param TO value" of ALTER ROLE ... SET

    @property
    def superuser(self) -> bool:
        return "SUPERUSER" in self.attributes


@dataclass(frozen=True)
class Membership:
    role: str
    member: str
    options: str  # e.g. " WITH ADMIN OPTION"; validated to the shapes pg_dumpall writes


@dataclass(frozen=True)
class Globals:
    roles: dict[str, RoleDefinition]
    memberships: list[Membership]


def _attributes(text: str) -> list[str] | None:
    found = [m.group(0) for m in _ATTRIBUTE.finditer(text)]
    return found if " ".join(found) == text.strip() else None


def parse_globals(sql_text: str) -> Globals:
    """Role definitions, settings and memberships from ``pg_dumpall --globals-only``;
    lines of any other shape (tablespaces, comments, database settings) are ignored."""
    roles: dict[str, RoleDefinition] = {}
    memberships: list[Membership] = []
    for line in sql_text.splitlines():
        if match := _CREATE_ROLE.match(line):
            name = unquote(match.group(1))
            roles.setdefault(name, RoleDefinition(name))
        elif match := _ALTER_ROLE_WITH.match(line):
            name = unquote(match.group(1))
            attrs = _attributes(match.group(2))
            if name in roles and attrs is not None:
                roles[name].attributes = attrs
        elif match := _ALTER_ROLE_SET.match(line):
            name = unquote(match.group(1))
            if name in roles:
                roles[name].settings.append(match.group(2))
        elif match := _MEMBERSHIP.match(line):
            role, member = unquote(match.group(1)), unquote(match.group(2))
            memberships.append(Membership(role, member, match.group(3)))
    return Globals(roles, memberships)
