from codat_emulator.cli import main

main()
