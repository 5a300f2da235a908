/* Every public function of include/chatstore.h that returns cs_err, for the
 * error tracing of errtrace.c: ET(name, (parameters), (arguments)).
 *
 * tests/CMakeLists.txt reads the names from the lines starting "ET(" (one
 * entry starts per line; it may continue on the next lines) to pass
 * -Wl,--wrap=<name> to the linker, and check_error_lists fails when this
 * list and the header's cs_err functions differ, so a new public function
 * is one line here. errtrace.c checks each signature against the header.
 * No include guard: it is included once per expansion of ET. */
ET(cs_store_new, (const cs_options *opts, cs_store **out), (opts, out))
ET(cs_store_clear, (cs_store *s), (s))
ET(cs_store_new_epoch, (cs_store *s, uint32_t *epoch), (s, epoch))
ET(cs_store_set_limits, (cs_store *s, const cs_limits *lim), (s, lim))
ET(cs_store_lock_shared, (cs_store *s), (s))
ET(cs_store_lock_exclusive, (cs_store *s), (s))
ET(cs_store_unlock, (cs_store *s), (s))
ET(cs_store_check, (const cs_store *s), (s))
ET(cs_parse_date, (cs_str str, int64_t *out), (str, out))
ET(cs_service_create,
   (cs_store *s, cs_str friendly_name, cs_service_view *out),
   (s, friendly_name, out))
ET(cs_service_create_with,
   (cs_store *s, const cs_service_params *p, cs_service_view *out),
   (s, p, out))
ET(cs_service_update_with,
   (cs_store *s, cs_str service_sid, const cs_service_params *p,
    cs_service_view *out),
   (s, service_sid, p, out))
ET(cs_service_fetch,
   (const cs_store *s, cs_str service_sid, cs_service_view *out),
   (s, service_sid, out))
ET(cs_service_update,
   (cs_store *s, cs_str service_sid, cs_str friendly_name,
    cs_service_view *out),
   (s, service_sid, friendly_name, out))
ET(cs_service_delete, (cs_store *s, cs_str service_sid), (s, service_sid))
ET(cs_channel_create,
   (cs_store *s, cs_str service_sid, const cs_channel_params *p,
    cs_channel_view *out),
   (s, service_sid, p, out))
ET(cs_channel_fetch,
   (const cs_store *s, cs_str service_sid, cs_str channel,
    cs_channel_view *out),
   (s, service_sid, channel, out))
ET(cs_channel_update,
   (cs_store *s, cs_str service_sid, cs_str channel,
    const cs_channel_params *p, cs_channel_view *out),
   (s, service_sid, channel, p, out))
ET(cs_channel_delete,
   (cs_store *s, cs_str service_sid, cs_str channel, cs_str webhook),
   (s, service_sid, channel, webhook))
ET(cs_media_create,
   (cs_store *s, cs_str service_sid, cs_str content_type, cs_str filename,
    uint64_t size, cs_media_view *out),
   (s, service_sid, content_type, filename, size, out))
ET(cs_media_fetch,
   (const cs_store *s, cs_str service_sid, cs_str media_sid,
    cs_media_view *out),
   (s, service_sid, media_sid, out))
ET(cs_media_delete, (cs_store *s, cs_str service_sid, cs_str media_sid),
   (s, service_sid, media_sid))
ET(cs_message_create,
   (cs_store *s, cs_str service_sid, cs_str channel,
    const cs_message_params *p, cs_message_view *out),
   (s, service_sid, channel, p, out))
ET(cs_message_fetch,
   (const cs_store *s, cs_str service_sid, cs_str channel,
    cs_str message_sid, cs_message_view *out),
   (s, service_sid, channel, message_sid, out))
ET(cs_message_update,
   (cs_store *s, cs_str service_sid, cs_str channel, cs_str message_sid,
    const cs_message_params *p, cs_message_view *out),
   (s, service_sid, channel, message_sid, p, out))
ET(cs_message_delete,
   (cs_store *s, cs_str service_sid, cs_str channel, cs_str message_sid,
    cs_str webhook),
   (s, service_sid, channel, message_sid, webhook))
ET(cs_service_list, (const cs_store *s, const cs_page_params *q, cs_page *out),
   (s, q, out))
ET(cs_channel_list,
   (const cs_store *s, cs_str service_sid, const cs_page_params *q,
    cs_page *out),
   (s, service_sid, q, out))
ET(cs_message_list,
   (const cs_store *s, cs_str service_sid, cs_str channel,
    const cs_page_params *q, cs_page *out),
   (s, service_sid, channel, q, out))
ET(cs_render_service,
   (const cs_store *s, const cs_service_view *v, cs_buf *b), (s, v, b))
ET(cs_render_channel,
   (const cs_store *s, const cs_channel_view *v, cs_buf *b), (s, v, b))
ET(cs_render_message,
   (const cs_store *s, const cs_message_view *v, cs_buf *b), (s, v, b))
ET(cs_render_media, (const cs_store *s, const cs_media_view *v, cs_buf *b),
   (s, v, b))
ET(cs_render_page, (const cs_store *s, cs_page *pg, cs_buf *b), (s, pg, b))
ET(cs_observer_add,
   (cs_store *s, cs_observer_fn fn, void *ctx, uint64_t *id),
   (s, fn, ctx, id))
ET(cs_observer_remove, (cs_store *s, uint64_t id), (s, id))
ET(cs_store_set_journal, (cs_store *s, cs_journal_fn fn, void *ctx),
   (s, fn, ctx))
ET(cs_journal_record_seq, (const void *rec, size_t len, uint64_t *seq),
   (rec, len, seq))
ET(cs_journal_apply,
   (cs_store *s, const void *rec, size_t len, bool *applied,
    cs_decode_error *err),
   (s, rec, len, applied, err))
ET(cs_snapshot_save, (const cs_store *s, cs_write_fn fn, void *ctx),
   (s, fn, ctx))
ET(cs_snapshot_load,
   (const cs_options *opts, cs_read_fn fn, void *ctx, cs_store **out,
    cs_decode_error *err),
   (opts, fn, ctx, out, err))
ET(cs_journal_record_info,
   (const void *rec, size_t len, cs_journal_info *out, cs_decode_error *err),
   (rec, len, out, err))
