"""``python -m arcface_paddle <command>``: the same as the ``arcface-paddle`` console command."""
from arcface_paddle.cli.main import entry_point

entry_point()
