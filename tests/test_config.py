import re

import pytest

from core.config import ConfigError, load_settings


def test_default_config_is_written_on_first_use(veille_home):
    s = load_settings()
    assert (veille_home / "veille.toml").exists()
    assert s.database_url.startswith("sqlite:///") and str(veille_home) in s.database_url
    assert {src.name for src in s.sources} >= {"cellar-acts", "ema-news"}


def test_bad_value_names_file_line_and_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('profile = "has"\n\n[crawl]\ncontact = "x"\ndownload_delay = -1\n')
    with pytest.raises(ConfigError, match=r"c\.toml:5: crawl\.download_delay: doit être supérieur ou égal à 0$"):
        load_settings(cfg)


def test_bad_source_entry_points_at_its_line(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[[sources]]\nname = "a"\nkind = "rss"\nurl = "u"\n\n[[sources]]\nname = "b"\nkind = "rss"\n'
        'url = "u"\ninterval = "often"\n'
    )
    with pytest.raises(
        ConfigError,
        match=r"c\.toml:10: sources\.1\.interval: pas une durée comme '30m', '2h', '1d' "
        r": 'often'$",
    ):
        load_settings(cfg)


def test_invalid_toml_and_unknown_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[crawl]\ncontact = \n")
    with pytest.raises(ConfigError, match=r"c\.toml:2: TOML invalide"):
        load_settings(cfg)
    cfg.write_text('[smtp]\nhots = "x"\n')
    with pytest.raises(ConfigError, match=r"c\.toml:2: smtp\.hots: clé inconnue 'hots' \(permises : host, port, "):
        load_settings(cfg)


def test_utf8_with_a_byte_order_mark_is_read_and_other_encodings_are_one_line(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(b"\xef\xbb\xbf" + '[crawl]\ncontact = "veille@has-sante.fr" # équipe\n'.encode())
    assert load_settings(cfg).crawl.contact == "veille@has-sante.fr"
    cfg.write_bytes('[crawl]\n# équipe veille\ncontact = "x"\n'.encode("latin-1"))
    with pytest.raises(
        ConfigError,
        match=r"c\.toml:2: pas en UTF-8 \(octet 0xe9\) ; enregistrez le "
        r"fichier en UTF-8",
    ) as exc:
        load_settings(cfg)
    assert "\n" not in str(exc.value)


def test_secrets_come_from_the_environment_and_never_print(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[smtp]\nhost = "127.0.0.1"\npassword = "from-file"\nport = "nope"\n')
    monkeypatch.setenv("VEILLE_SMTP_PASSWORD", "s3cret-env")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    assert "s3cret" not in str(exc.value) and "from-file" not in str(exc.value)
    cfg.write_text('[smtp]\nhost = "127.0.0.1"\npassword = "from-file"\n')
    s = load_settings(cfg)
    assert s.smtp.password.get_secret_value() == "s3cret-env"
    assert "s3cret" not in repr(s)


def test_a_broken_profile_file_names_its_line(veille_home):
    from alerts.calendar import profile_facts
    from core.profiles import load_labels

    settings = load_settings()
    edited = veille_home / "profiles" / "has" / "profile.toml"
    edited.parent.mkdir(parents=True)
    edited.write_text('[labels.deai]\nname = "DEAI"\n\n[labels.daqss\nname = "x"\n', encoding="utf-8")
    for read in (load_labels, profile_facts):
        with pytest.raises(ConfigError, match=rf"^{re.escape(str(edited))}:4: TOML invalide"):
            read(settings)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (
            '[schedule]\ntimezone = "Europe/Pariss"\n',
            r"c\.toml:2: schedule\.timezone: fuseau horaire inconnu 'Europe/Pariss' ; "
            r"vouliez-vous dire 'Europe/Paris' \?",
        ),
        ('[schedule]\ndigest_time = "25:00"\n', r"c\.toml:2: schedule\.digest_time: pas une heure du jour"),
        (
            'profile = "hass"\n',
            r"c\.toml:1: profile: profil inconnu 'hass' \(connus : dns, has\) ; vouliez-vous dire 'has' \?",
        ),
        (
            '[[sources]]\nname = "x"\nkind = "sparqle"\nurl = "u"\n',
            r"c\.toml:3: sources\.0\.kind: type de source inconnu 'sparqle'",
        ),
    ],
)
def test_values_that_name_nothing_real_are_refused_at_their_line(tmp_path, veille_home, body, where):
    cfg = tmp_path / "c.toml"
    cfg.write_text(body)
    with pytest.raises(ConfigError, match=where):
        load_settings(cfg)


def test_every_declared_kind_names_a_spider_of_that_kind():
    """The kinds' declarations name their spider by path (no Scrapy import for the config): each resolves."""
    from crawlers.child import load_spider
    from crawlers.kinds import KINDS

    shipped = {name: kind for name, kind in KINDS.items() if kind.spider.startswith("crawlers.")}  # not tests' toy
    assert sorted(shipped) == ["comitology", "delegated_acts", "ep_odp", "funding", "hys", "oeil", "rss", "sparql"]
    for name, kind in KINDS.items():
        assert load_spider(kind.spider).kind == name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "nosuch", "rules", "check"], "erreur : --profile : profil inconnu 'nosuch' (connus : dns, has)"),
        (["run", "--source", "ema"], "erreur : aucune source nommée 'ema' (connues : cellar-acts,"),
    ],
)
def test_what_a_person_types_wrong_is_one_line_never_a_traceback(veille_home, args, message):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "veille", *args], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and res.stderr.startswith(message)
