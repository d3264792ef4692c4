"""The CLI refuses run and stream settings that would train on nothing, before it writes anything."""

import pytest

from dtm_lite.cli import STREAM_MINIMUMS, main


@pytest.mark.parametrize("name", sorted(STREAM_MINIMUMS))
def test_settings_below_their_minimum_are_refused_before_the_run_folder_is_made(name, tmp_path):
    out = tmp_path / "run"
    flag = "--" + name.replace("_", "-")
    with pytest.raises(SystemExit, match=f"{flag} must be >= {STREAM_MINIMUMS[name]}, got {STREAM_MINIMUMS[name] - 1}"):
        main(["train", "--quick", "--out", str(out), flag, str(STREAM_MINIMUMS[name] - 1)])
    assert not out.exists()
