from ptb_lstm.cli import main

raise SystemExit(main())
