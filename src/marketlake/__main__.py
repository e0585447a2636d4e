from marketlake.cli.app import main

main()
