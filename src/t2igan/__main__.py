"""`python -m t2igan …` (and `torchrun -m t2igan train …`) run the command-line tool."""

from t2igan.apps.cli import main

if __name__ == "__main__":
    main()
