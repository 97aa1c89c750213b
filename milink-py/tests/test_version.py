import milink


def test_version_matches_the_crate() -> None:
    assert milink.__version__ == "0.1.0"
