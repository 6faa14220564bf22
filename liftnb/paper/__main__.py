"""python -m liftnb.paper: the reproduction command (see liftnb.paper.reproduce)."""
from .reproduce import main

main()
