"""``python -m demo`` (``make demo``): run the continuous-training story on the embedded stack."""

from demo.story import main

if __name__ == "__main__":
    raise SystemExit(main())
