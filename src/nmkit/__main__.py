from nmkit.cli.app import main

main()
