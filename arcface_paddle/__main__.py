"""``python -m arcface_paddle <command>``: the same as the ``arcface-paddle`` console command."""
from arcface_paddle.cli.main import entry_point

# Guarded: worker processes started with spawn/forkserver (conversion, alignment) import the main module again.
if __name__ == "__main__":
    entry_point()
