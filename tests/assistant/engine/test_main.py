"""``python -m assistant.engine``: the engine's command line without the app's settings."""

from __future__ import annotations

import pytest

from assistant.engine.__main__ import main


@pytest.mark.parametrize("argv, usage", [
    (["--help"], "usage: python -m assistant.engine [-h]"),
    (["train", "--help"], "usage: python -m assistant.engine train [-h]"),
])
def test_help_names_the_command_as_typed(capsys, argv, usage):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(usage)  # not "... assistant.engine engine ..."


def test_errors_come_back_as_one_line_and_exit_code_2(capsys, tmp_path):
    assert main(["train", "--config", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lingxi engine: ") and err.count("\n") == 1
