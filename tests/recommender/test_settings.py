"""The recommender's settings: one mechanism (core.config), old names read, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import SettingsError
from core.paths import Paths
from recommender.settings import Settings


def test_settings_resolve_from_the_environment_by_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECOMMENDER__TOP_K", "7")
    monkeypatch.setenv("RECOMMENDER__PROMOTION_MARGIN", "0.1")
    monkeypatch.setenv("RECOMMENDER__MODELS_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("RECOMMENDER__CANDIDATES", '{"tiny": {"kind": "als", "factors": 2}}')
    settings = Settings.from_config(Paths.under(tmp_path))
    assert (settings.top_k, settings.promotion_margin) == (7, 0.1)
    assert settings.models_dir == tmp_path / "elsewhere"
    assert settings.candidates == {"tiny": {"kind": "als", "factors": 2}}
    assert settings.duckdb_path == tmp_path / "moovitamix.duckdb"


def test_unset_settings_keep_their_defaults_on_the_data_folder(tmp_path: Path) -> None:
    settings = Settings.from_config(Paths.under(tmp_path))
    assert settings.models_dir == tmp_path / "models"
    assert settings.top_k == 20


def test_the_old_variable_names_still_work_with_a_deprecation_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECOMMENDER_TOP_K", "5")
    with pytest.warns(DeprecationWarning, match="RECOMMENDER_TOP_K .* RECOMMENDER__TOP_K"):
        settings = Settings.from_config(Paths.under(tmp_path))
    assert settings.top_k == 5


def test_a_holdout_longer_than_the_time_split_allows_is_a_settings_error(tmp_path: Path) -> None:
    """Holding out as many nights as a time split needs would leave nothing to train on (and
    indexed past the loads: an IndexError deep in the split before this check)."""
    with pytest.raises(SettingsError, match=r"recommender.holdout_nights is 4: .* \(4\)"):
        Settings.from_config(Paths.under(tmp_path), holdout_nights=4)
    with pytest.raises(SettingsError, match="holdout_nights is 0"):
        Settings.from_config(Paths.under(tmp_path), holdout_nights=0)
    assert Settings.from_config(Paths.under(tmp_path), holdout_nights=3).holdout_nights == 3


def test_a_value_of_the_wrong_type_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECOMMENDER__TOP_K", "twenty")
    with pytest.raises((SettingsError, ValueError), match="top_k"):
        Settings.from_config(Paths.under(tmp_path))
