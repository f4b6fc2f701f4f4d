import pytest

from pipeline.core.config import init_site, load_site
from pipeline.core.errors import ConfigError


def test_init_creates_areas_and_defaults(tmp_path):
    site = init_site(tmp_path / "s")
    for _, path in site.areas:
        assert path.is_dir() and path.is_relative_to(site.root)
    assert site.database_url == f"sqlite:///{site.root / 'owl.db'}"
    assert site.executor.kind == "local"
    assert "wfc3" in site.instruments and site.instruments["wfc3"]["switches"]["UVIS"]["DARKCORR"] == "PERFORM"


def test_env_overrides_and_cli_overrides(tmp_path):
    init_site(tmp_path / "s")
    env = {"OWL_EXECUTOR__WORKERS": "7", "OWL_DATABASE__URL": "sqlite:////tmp/x.db"}
    site = load_site(tmp_path / "s", environ=env)
    assert site.executor.workers == 7 and site.database_url == "sqlite:////tmp/x.db"
    site = load_site(tmp_path / "s", environ=env, overrides={"executor.workers": 3})
    assert site.executor.workers == 3


def test_errors_name_file_and_key(tmp_path):
    root = tmp_path / "s"
    init_site(root)
    (root / "owl.toml").write_text('[executor]\nkind = "slurm"\n')
    with pytest.raises(ConfigError, match=r"owl\.toml.*executor\.kind"):
        load_site(root, environ={})
    (root / "owl.toml").write_text('[executor]\nwrokers = 2\n')
    with pytest.raises(ConfigError, match=r"executor\.wrokers"):
        load_site(root, environ={})
    (root / "owl.toml").write_text("[executor\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_site(root, environ={})
    with pytest.raises(ConfigError, match="owl init"):
        load_site(tmp_path / "nowhere", environ={})


def test_site_from_environment(tmp_path):
    init_site(tmp_path / "s")
    site = load_site(environ={"OWL_SITE": str(tmp_path / "s")})
    assert site.root == (tmp_path / "s").resolve()
    assert site.environment()["CRDS_PATH"] == str(site.areas.crds)
    assert site.environment()["NUMBA_CACHE_DIR"] == str(site.root / "cache" / "numba")
