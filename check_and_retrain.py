"""The seed's entry point: ``python check_and_retrain.py`` does what ``predelinq check`` does.

Kept at the repository root for the cron lines and scripts written against the original
engine; the installed package has the same as ``python -m predelinq.check_and_retrain``.
"""

from predelinq.check_and_retrain import main

if __name__ == "__main__":
    main()
