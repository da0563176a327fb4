"""Settings come from the environment; a bad value stops the process with a message naming it.

Each case runs in a fresh interpreter (settings are read once per process), as `make run`, gunicorn
and `manage.py` start one.
"""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core import datadir

ROOT = Path(__file__).resolve().parent.parent


def run_django(code: str, **env: str) -> subprocess.CompletedProcess:
    """Start Django in a new process with `env` on top of this one's, then run `code`."""
    setup = "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'pod_gateway.settings'; django.setup(); "
    # This test process shares its key and metrics directory with its workers; these cases choose their own.
    base = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    return subprocess.run(
        [sys.executable, "-c", setup + code],
        cwd=ROOT,
        env={**base, "SECRET_KEY": "", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def load_setting(name: str, **env: str) -> subprocess.CompletedProcess:
    return run_django(f"from django.conf import settings; print(settings.{name})", **env)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("1000/hour", (1000, 3600)),
        ("100/day", (100, 86400)),
        ("10/minute", (10, 60)),
        ("2/second", (2, 1)),
        ("5/10m", (5, 600)),
        ("1000/h", (1000, 3600)),
        (" 30 / 2h ", (30, 7200)),
    ],
)
def test_rates_are_read_in_the_short_and_in_drf_spellings(tmp_path, value, parsed):
    result = load_setting("RATE_LIMITS['read']", DATA_DIR=str(tmp_path), RATE_LIMIT_READ=value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(parsed)


def test_every_rate_variable_takes_drf_spellings(tmp_path):
    env = {
        "RATE_LIMIT_GENERATION": "10/minute", "RATE_LIMIT_PUBLISHING": "50/hour", "RATE_LIMIT_APPROVAL": "100/day",
        "RATE_LIMIT_READ": "2/second", "RATE_LIMIT_ADMIN_LOGIN": "10/5m",
    }
    result = load_setting("RATE_LIMITS, settings.ADMIN_LOGIN_RATE", DATA_DIR=str(tmp_path), **env)
    assert result.returncode == 0, result.stderr
    expected = {"generation": (10, 60), "publishing": (50, 3600), "approval": (100, 86400), "read": (2, 1)}
    assert result.stdout.strip() == f"{expected} (10, 300)"


def test_defaults_are_kept(tmp_path):
    result = load_setting("RATE_LIMITS, settings.ADMIN_LOGIN_RATE, settings.DEBUG", DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    expected = {"generation": (10, 3600), "publishing": (50, 3600), "approval": (100, 3600), "read": (1000, 3600)}
    assert result.stdout.strip() == f"{expected} (10, 300) False"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RATE_LIMIT_READ", "lots"),
        ("RATE_LIMIT_READ", "0/h"),
        ("RATE_LIMIT_READ", "10/0m"),
        ("RATE_LIMIT_READ", "10/week"),
        ("RATE_LIMIT_ADMIN_LOGIN", "10"),
        ("DEBUG", "maybe"),
        ("GENERATION_BACKEND", "dalle"),
        ("WORKER_HEARTBEAT_SECONDS", "0.01"),
        ("PRINT_FILE_URL_MAX_AGE", "10"),
        ("HTTP_RETRIES", "many"),
        ("WEBHOOK_RETRY_DELAYS", "5,soon"),
        ("API_SUNSET", "v1=next-year"),
        ("API_SUNSET", "v9=2027-06-30"),
        ("API_DEPRECATED_VERSIONS", "v9"),
        ("DATABASE_URL", "nonsense://"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_malformed_values_stop_start_with_the_variable_named(tmp_path, name, value):
    result = load_setting("DEBUG", DATA_DIR=str(tmp_path), **{name: value})
    assert result.returncode != 0
    assert name in result.stderr.strip().splitlines()[-1], result.stderr


def test_a_bad_rate_says_what_it_should_look_like(tmp_path):
    result = load_setting("DEBUG", DATA_DIR=str(tmp_path), RATE_LIMIT_READ="lots")
    last = result.stderr.strip().splitlines()[-1]
    assert "RATE_LIMIT_READ" in last and "100/hour" in last and "'lots'" in last


def test_blank_values_mean_the_default(tmp_path):
    """`DEBUG=` in a .env file (or an empty variable) is the default, as it always was."""
    env = {"DEBUG": "", "RATE_LIMIT_READ": " ", "HTTP_RETRIES": "", "ALLOWED_HOSTS": ""}
    result = load_setting("DEBUG, settings.RATE_LIMITS['read'], settings.HTTP_RETRIES, settings.ALLOWED_HOSTS",
                          DATA_DIR=str(tmp_path), **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False (1000, 3600) 4 ['localhost', '127.0.0.1', '[::1]', 'testserver']"


def test_lists_ignore_spaces_and_empty_items(tmp_path):
    result = load_setting("ALLOWED_HOSTS, settings.WEBHOOK_RETRY_DELAYS, settings.API_SUNSET",
                          DATA_DIR=str(tmp_path), ALLOWED_HOSTS=" a.example, b.example ,", WEBHOOK_RETRY_DELAYS="5, 30",
                          API_SUNSET="v1 = 2027-06-30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['a.example', 'b.example'] [5, 30] {'v1': datetime.date(2027, 6, 30)}"


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path):
    project = tmp_path / "project"
    (project / "pod_gateway").mkdir(parents=True)
    for name in ("settings.py", "__init__.py"):
        (project / "pod_gateway" / name).write_text((ROOT / "pod_gateway" / name).read_text())
    (project / ".env").write_text("RATE_LIMIT_READ=7/minute\nRATE_LIMIT_GENERATION=3/hour\n")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import pod_gateway.settings as s; "
        "print(s.RATE_LIMITS['read'], s.RATE_LIMITS['generation'])"
    )
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "RATE_LIMIT_GENERATION": "4/hour", "PYTHONPATH": str(ROOT)}
    env.pop("RATE_LIMIT_READ", None)
    result = subprocess.run([sys.executable, "-c", code, str(project)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(7, 60) (4, 3600)"


def test_starting_django_writes_nothing_into_a_new_data_dir(tmp_path):
    data_dir = tmp_path / "not-yet"
    result = load_setting("DATA_DIR", DATA_DIR=str(data_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(data_dir)
    assert not data_dir.exists()


def test_datadir_prepare_makes_the_directories_and_a_private_key_once(tmp_path):
    data_dir = tmp_path / "data"
    datadir.prepare(data_dir)
    for sub in ("static", "media", "prometheus", "cache/ratelimit"):
        assert (data_dir / sub).is_dir(), sub
    key_file = data_dir / "secret_key"
    key = key_file.read_text()
    assert len(key) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    datadir.prepare(data_dir)
    assert key_file.read_text() == key
    assert not [path for path in data_dir.iterdir() if path.name.startswith(".")]


def test_settings_read_the_key_file_and_every_process_gets_the_same_key(tmp_path):
    datadir.prepare(tmp_path)
    first = load_setting("SECRET_KEY", DATA_DIR=str(tmp_path))
    second = load_setting("SECRET_KEY", DATA_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == second.stdout.strip() == (tmp_path / "secret_key").read_text()


def test_without_a_key_file_a_process_uses_a_random_key_of_its_own(tmp_path):
    first = load_setting("SECRET_KEY, settings.SECRET_KEY_SOURCE", DATA_DIR=str(tmp_path))
    second = load_setting("SECRET_KEY, settings.SECRET_KEY_SOURCE", DATA_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout.split()[1] == "process"
    assert len(first.stdout.split()[0]) >= 50 and first.stdout != second.stdout
    assert not (tmp_path / "secret_key").exists()


def test_secret_key_from_the_environment_wins(tmp_path):
    datadir.prepare(tmp_path)
    result = load_setting("SECRET_KEY, settings.SECRET_KEY_SOURCE", DATA_DIR=str(tmp_path), SECRET_KEY="from-env")
    assert result.stdout.split() == ["from-env", "environment"]


def test_metrics_are_shared_through_files_only_in_a_prepared_data_dir(tmp_path):
    """prometheus_client's multiprocess mode needs its directory before the first metric is made."""
    code = "print(os.environ.get('PROMETHEUS_MULTIPROC_DIR'))"
    fresh = run_django(code, DATA_DIR=str(tmp_path))
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.strip() == "None"
    assert not (tmp_path / "prometheus").exists()
    datadir.prepare(tmp_path)
    prepared = run_django(code, DATA_DIR=str(tmp_path))
    assert prepared.returncode == 0, prepared.stderr
    assert prepared.stdout.strip() == str(tmp_path / "prometheus")
    assert list((tmp_path / "prometheus").glob("counter_*.db"))


def test_web_processes_keep_sqlite_connections_and_pool_postgresql_ones(tmp_path):
    # The web server's requests run on a fixed pool of threads (pod_gateway.asgi), so a SQLite connection
    # is kept per thread; PostgreSQL connections come from the psycopg pool.
    code = ("from django.conf import settings; d = settings.DATABASES['default'];"
            " print(d['CONN_MAX_AGE'], 'pool' in d.get('OPTIONS', {}))")
    sqlite = run_django(code, DATA_DIR=str(tmp_path), DATABASE_URL="", POD_SERVER_INTERFACE="asgi")
    assert sqlite.stdout.split() == ["None", "False"], sqlite.stderr
    postgresql = run_django(code, DATA_DIR=str(tmp_path), DATABASE_URL="postgres://u@127.0.0.1:1/db",
                            POD_SERVER_INTERFACE="asgi")
    assert postgresql.stdout.split() == ["0", "True"], postgresql.stderr


@pytest.mark.parametrize(
    ("value", "threshold", "options"),
    [("", "5", "-c plan_cache_mode=force_custom_plan"), ("true", "5", "-c plan_cache_mode=force_custom_plan"),
     ("false", "None", "")],
)
def test_postgresql_binds_on_the_server_and_prepares_unless_told_not_to(tmp_path, value, threshold, options):
    code = ("from django.conf import settings; o = settings.DATABASES['default']['OPTIONS'];"
            " print(o['server_side_binding'], o['prepare_threshold'], o.get('options', ''), sep='|')")
    result = run_django(code, DATA_DIR=str(tmp_path), DATABASE_URL="postgres://u@127.0.0.1:1/db",
                        DATABASE_PREPARED_STATEMENTS=value)
    assert result.stdout.strip().split("|") == ["True", threshold, options], result.stderr
