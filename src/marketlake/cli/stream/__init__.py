"""``marketlake stream``: the commands (:mod:`.commands`), their options (:mod:`.options`),
and what the commands assemble from them: the settings and components of an invocation
(:mod:`.context`), the tick producer (:mod:`.producer`), the processing pipeline
(:mod:`.processor`), and stop signals and progress lines (:mod:`.console`)."""
