"""compose.yaml, the team deployment README.md describes, checked without Docker (`docker compose
config` is not available here): its structure (PostgreSQL with a health check, two or more app
replicas built from the Dockerfile, waiting for the database), and every variable it gives the
app is one the app reads (the settings module or the module that owns it) and the README
documents; the database URL it builds points at its own database service."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from sqlalchemy.engine import make_url

from playground import settings
from playground.db.engine import driver_url

REPO = Path(__file__).resolve().parents[1]
SOURCE = "\n".join(path.read_text(encoding="utf-8") for path in sorted((REPO / "playground").rglob("*.py")))


def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))


def app_services(spec: dict) -> dict[str, dict]:
    return {name: service for name, service in spec["services"].items() if name != "db"}


def interpolated(value: str) -> str:
    """A value as compose would pass it with every ${VAR...} left unset: its default, or a placeholder
    (an error-if-unset variable such as the password)."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}", lambda m: m.group(2) if m.group(2) is not None
                  else f"x{m.group(1).lower()}", value)


def test_postgres_and_replicas_of_the_app() -> None:
    spec = compose()
    db = spec["services"]["db"]
    assert db["image"].startswith("postgres:") and "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in db["volumes"])
    apps = app_services(spec)
    assert len(apps) >= 2, "replicas: at least two app services"
    assert (REPO / "Dockerfile").exists() and all(service["build"] == "." for service in apps.values())
    assert "streamlit" in (REPO / "Dockerfile").read_text(encoding="utf-8")
    published = [port.split(":")[0] for service in apps.values() for port in service["ports"]]
    assert len(set(published)) == len(published), "each replica on its own host port"
    for service in apps.values():
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
        assert "/_stcore/health" in " ".join(service["healthcheck"]["test"])
        assert service["environment"] == apps["app-1"]["environment"], "replicas differ only in their port"


def test_every_variable_the_app_gets_is_one_it_reads_and_the_readme_documents() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Deploying for a team"):]
    section = section[:section.index("\n## ", 3)]
    environment = app_services(compose())["app-1"]["environment"]
    assert settings.DATABASE_URL_ENV in environment
    for name in environment:
        assert f'"{name}"' in SOURCE, f"{name}: the app never reads it"
        assert f"`{name}`" in readme, f"{name}: not in the README's settings"
    assert "compose.yaml" in section and "PLAYGROUND_DATABASE_URL" in section and "[auth]" in section


def test_the_database_url_is_the_compose_database_and_the_store_takes_it() -> None:
    spec = compose()
    url = interpolated(app_services(spec)["app-1"]["environment"][settings.DATABASE_URL_ENV])
    assert settings.database_url({settings.DATABASE_URL_ENV: url}) == url
    parsed = make_url(driver_url(url))
    db = spec["services"]["db"]["environment"]
    assert parsed.drivername == "postgresql+psycopg" and parsed.host == "db" and parsed.port == 5432
    assert parsed.username == db["POSTGRES_USER"] and parsed.database == db["POSTGRES_DB"]
    assert db["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD") and "${POSTGRES_PASSWORD" in (
        app_services(spec)["app-1"]["environment"][settings.DATABASE_URL_ENV])  # one password, given once
